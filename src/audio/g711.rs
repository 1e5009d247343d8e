//! G.711 A-law and µ-law, bit-exact with the ITU-T reference tables.
//!
//! Encoders take 16-bit linear PCM; decoders return it. The server decodes with the same tables the
//! client encodes with, so a round trip is exact for every code.

/// Upper bounds of the eight A-law segments, on the 13-bit magnitude.
const ALAW_SEGMENT_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
/// Upper bounds of the eight µ-law segments, on the biased 14-bit magnitude.
const ULAW_SEGMENT_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// µ-law bias (0x84) on the 16-bit scale.
const ULAW_BIAS: i32 = 0x84;
/// Largest µ-law magnitude on the 14-bit scale before the bias is added.
const ULAW_CLIP: i32 = 8159;

fn segment(value: i32, ends: &[i32; 8]) -> usize {
    ends.iter().position(|&end| value <= end).unwrap_or(8)
}

/// Encodes one 16-bit sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample) >> 3;
    // Even bits are inverted on the wire (0x55); the sign bit is set for non-negative values.
    let mask: u8 = if magnitude >= 0 {
        0xD5
    } else {
        magnitude = -magnitude - 1;
        0x55
    };
    let seg = segment(magnitude, &ALAW_SEGMENT_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let code = ((seg as i32) << 4) | ((magnitude >> shift) & 0x0F);
    (code as u8) ^ mask
}

/// Decodes one A-law byte to 16-bit linear PCM.
pub fn alaw_to_linear(code: u8) -> i16 {
    let code = code ^ 0x55;
    let mut value = i32::from(code & 0x0F) << 4;
    let seg = i32::from((code & 0x70) >> 4);
    value += match seg {
        0 => 8,
        _ => 0x108,
    };
    if seg > 1 {
        value <<= seg - 1;
    }
    let value = if code & 0x80 != 0 { value } else { -value };
    value as i16
}

/// Encodes one 16-bit sample as µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample) >> 2;
    let mask: u8 = if magnitude < 0 {
        magnitude = -magnitude;
        0x7F
    } else {
        0xFF
    };
    magnitude = magnitude.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let seg = segment(magnitude, &ULAW_SEGMENT_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let code = ((seg as i32) << 4) | ((magnitude >> (seg + 1)) & 0x0F);
    (code as u8) ^ mask
}

/// Decodes one µ-law byte to 16-bit linear PCM.
pub fn ulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let mut value = (i32::from(code & 0x0F) << 3) + ULAW_BIAS;
    value <<= (code & 0x70) >> 4;
    let value = if code & 0x80 != 0 {
        ULAW_BIAS - value
    } else {
        value - ULAW_BIAS
    };
    value as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values every G.711 implementation agrees on (ITU-T G.711 tables 1a/1b and 2a/2b).
    #[test]
    fn known_alaw_values() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(linear_to_alaw(1000), 0xFA);
        assert_eq!(linear_to_alaw(-1000), 0x7A);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(alaw_to_linear(0xFA), 1008);
    }

    #[test]
    fn known_ulaw_values() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(1000), 0xCE);
        assert_eq!(linear_to_ulaw(-1000), 0x4E);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xCE), 988);
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "alaw {code:#x}");
            // 0x7F is µ-law's negative zero: it decodes to 0, which encodes as 0xFF.
            if code != 0x7F {
                assert_eq!(linear_to_ulaw(ulaw_to_linear(code)), code, "ulaw {code:#x}");
            }
        }
    }

    #[test]
    fn quantisation_error_is_within_half_a_step() {
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let a = i32::from(alaw_to_linear(linear_to_alaw(sample)));
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(sample)));
            let s = i32::from(sample);
            // The largest step is 1024 (A-law) / 1024 (µ-law) in the top segment; clipping adds a
            // little at the extremes.
            assert!((a - s).abs() <= 528, "alaw {sample} -> {a}");
            assert!((u - s).abs() <= 660, "ulaw {sample} -> {u}");
            // Relative error in the upper segments stays under ~3.2%.
            if s.abs() > 256 {
                assert!(f64::from((a - s).abs()) / f64::from(s.abs()) < 0.033);
            }
        }
    }

    #[test]
    fn encoding_is_monotonic() {
        let mut last_a = i32::MIN;
        let mut last_u = i32::MIN;
        for sample in i16::MIN..=i16::MAX {
            let a = i32::from(alaw_to_linear(linear_to_alaw(sample)));
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(sample)));
            assert!(a >= last_a && u >= last_u, "at {sample}");
            last_a = a;
            last_u = u;
        }
    }
}
