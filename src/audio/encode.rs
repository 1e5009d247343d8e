//! Sample encoding: f32 in [-1, 1] to the wire formats, and back (for the local server).

use super::g711;
use crate::protocol::Encoding;

/// Converts an f32 sample to 16-bit PCM. The scale is 32768 both ways, so a 16-bit source survives
/// the trip through f32 bit for bit.
#[inline]
pub fn f32_to_i16(sample: f32) -> i16 {
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Converts an f32 sample to 32-bit PCM (scale 2^31).
#[inline]
pub fn f32_to_i32(sample: f32) -> i32 {
    // f64: 2^31 - 1 is not representable in f32, and clamping there would wrap.
    (f64::from(sample) * 2_147_483_648.0)
        .round()
        .clamp(-2_147_483_648.0, 2_147_483_647.0) as i32
}

/// Appends the encoded bytes of `samples` to `out`.
pub fn encode_into(encoding: Encoding, samples: &[f32], out: &mut Vec<u8>) {
    out.reserve(samples.len() * encoding.bytes_per_sample());
    match encoding {
        Encoding::Linear16 => {
            for &s in samples {
                out.extend_from_slice(&f32_to_i16(s).to_le_bytes());
            }
        }
        Encoding::Linear32 => {
            for &s in samples {
                out.extend_from_slice(&f32_to_i32(s).to_le_bytes());
            }
        }
        Encoding::Alaw => out.extend(samples.iter().map(|&s| g711::linear_to_alaw(f32_to_i16(s)))),
        Encoding::Mulaw => out.extend(samples.iter().map(|&s| g711::linear_to_ulaw(f32_to_i16(s)))),
    }
}

/// Decodes a byte stream in one encoding back to f32 samples, carrying a partial sample over to
/// the next call (frames need not end on a sample boundary).
#[derive(Debug, Clone)]
pub struct Decoder {
    encoding: Encoding,
    carry: Vec<u8>,
}

impl Decoder {
    pub fn new(encoding: Encoding) -> Self {
        Decoder {
            encoding,
            carry: Vec::with_capacity(4),
        }
    }

    /// Decodes `bytes`, appending samples to `out`.
    pub fn decode_into(&mut self, bytes: &[u8], out: &mut Vec<f32>) {
        let width = self.encoding.bytes_per_sample();
        let mut rest = bytes;
        if !self.carry.is_empty() {
            let need = width - self.carry.len();
            let take = need.min(rest.len());
            self.carry.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.carry.len() < width {
                return;
            }
            let carried = std::mem::take(&mut self.carry);
            self.decode_whole(&carried, out);
        }
        let whole = rest.len() - rest.len() % width;
        self.decode_whole(&rest[..whole], out);
        self.carry.extend_from_slice(&rest[whole..]);
    }

    fn decode_whole(&self, bytes: &[u8], out: &mut Vec<f32>) {
        match self.encoding {
            Encoding::Linear16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
            ),
            Encoding::Linear32 => out.extend(bytes.chunks_exact(4).map(|b| {
                (f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])) / 2_147_483_648.0) as f32
            })),
            Encoding::Alaw => out.extend(
                bytes
                    .iter()
                    .map(|&b| f32::from(g711::alaw_to_linear(b)) / 32768.0),
            ),
            Encoding::Mulaw => out.extend(
                bytes
                    .iter()
                    .map(|&b| f32::from(g711::ulaw_to_linear(b)) / 32768.0),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sixteen_bit_values_survive_f32() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(f32_to_i16(f32::from(s) / 32768.0), s);
        }
        assert_eq!(f32_to_i16(2.0), i16::MAX);
        assert_eq!(f32_to_i16(-2.0), i16::MIN);
        assert_eq!(f32_to_i32(1.0), i32::MAX);
        assert_eq!(f32_to_i32(-1.0), i32::MIN);
        assert_eq!(f32_to_i32(0.5), 1 << 30);
    }

    #[test]
    fn linear16_is_little_endian() {
        let mut out = Vec::new();
        encode_into(
            Encoding::Linear16,
            &[256.0 / 32768.0, -1.0 / 32768.0],
            &mut out,
        );
        assert_eq!(out, [0x00, 0x01, 0xFF, 0xFF]);
        out.clear();
        encode_into(Encoding::Linear32, &[0.5], &mut out);
        assert_eq!(out, [0, 0, 0, 0x40]);
    }

    proptest! {
        #[test]
        fn decoder_handles_any_split(
            samples in proptest::collection::vec(-32768i32..32768, 1..200),
            split in 0usize..1000,
            enc in 0usize..4,
        ) {
            let encoding = Encoding::ALL[enc];
            let input: Vec<f32> = samples.iter().map(|&s| s as f32 / 32768.0).collect();
            let mut bytes = Vec::new();
            encode_into(encoding, &input, &mut bytes);
            let split = split % (bytes.len() + 1);
            let mut decoder = Decoder::new(encoding);
            let mut whole = Vec::new();
            Decoder::new(encoding).decode_into(&bytes, &mut whole);
            let mut parts = Vec::new();
            decoder.decode_into(&bytes[..split], &mut parts);
            decoder.decode_into(&bytes[split..], &mut parts);
            prop_assert_eq!(&parts, &whole);
            prop_assert_eq!(parts.len(), input.len());
            if matches!(encoding, Encoding::Linear16 | Encoding::Linear32) {
                prop_assert_eq!(parts, input);
            }
        }
    }
}
