//! The transcript view: finals in the strong text colour (black on the light theme), the open
//! interim after them in the weak one (grey), one label per segment; hovering a word shows its
//! times.

use eframe::egui;
use egui::text::LayoutJob;
use egui::{FontId, TextFormat};

use crate::transcript::Transcript;

/// The whole transcript, scrolled to the newest words.
pub fn transcript_ui(ui: &mut egui::Ui, transcript: &Transcript, language_badges: bool) {
    egui::ScrollArea::vertical()
        .stick_to_bottom(true)
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.spacing_mut().item_spacing.x = 0.0;
                // One label per segment: each keeps its laid-out text in egui's cache, so
                // a new interim re-lays out only itself, not an hour of finals.
                for segment in &transcript.segments {
                    segment_label(ui, segment, language_badges);
                }
                let interim = interim_layout(&transcript.interim, ui.visuals());
                ui.add(egui::Label::new(interim).selectable(true).wrap());
            });
        });
}

/// A final segment as a selectable label; hovering a word shows its start and end time when the
/// server sent word timestamps.
fn segment_label(ui: &mut egui::Ui, segment: &crate::transcript::Segment, badge: bool) {
    let job = segment_layout(segment, ui.visuals(), badge);
    let text_starts_at = job.text.chars().count() - segment.text.chars().count() - 1;
    let (pos, galley, response) = egui::Label::new(job)
        .selectable(true)
        .wrap()
        .layout_in_ui(ui);
    response.widget_info(|| {
        egui::WidgetInfo::labeled(egui::Role::Label, ui.is_enabled(), galley.text())
    });
    if ui.is_rect_visible(response.rect) {
        egui::text_selection::LabelSelectionState::label_text_selection(
            ui,
            &response,
            pos,
            galley.clone(),
            ui.visuals().text_color(),
            egui::Stroke::NONE,
        );
    }
    if segment.words.is_empty() {
        return;
    }
    let Some(pointer) = response.hover_pos() else {
        return;
    };
    let index = galley.cursor_from_pos(pointer - pos).index;
    let Some(char_index) = index.0.checked_sub(text_starts_at) else {
        return;
    };
    if let Some(word) = word_at(segment, char_index) {
        response.on_hover_text(format!(
            "{}: {:.2} s – {:.2} s",
            word.word, word.start, word.end
        ));
    }
}

/// The timed word under a character of the segment's text: the n-th token is the n-th timed word
/// when the counts agree, else the first timed word with the same letters.
pub fn word_at(
    segment: &crate::transcript::Segment,
    char_index: usize,
) -> Option<&crate::protocol::WordTimestamp> {
    let mut start = 0;
    let tokens: Vec<(usize, usize, &str)> = segment
        .text
        .split(' ')
        .map(|token| {
            let span = (start, start + token.chars().count(), token);
            start = span.1 + 1;
            span
        })
        .collect();
    let (n, (_, _, token)) = tokens
        .iter()
        .enumerate()
        .find(|(_, (from, to, _))| (*from..=*to).contains(&char_index))?;
    let letters = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .collect::<String>()
            .to_lowercase()
    };
    if tokens.len() == segment.words.len() {
        return segment.words.get(n);
    }
    segment
        .words
        .iter()
        .find(|w| letters(&w.word) == letters(token))
}

/// One final segment: strong text colour, a trailing space, and with automatic language
/// detection a small badge of its language first.
pub fn segment_layout(
    segment: &crate::transcript::Segment,
    visuals: &egui::Visuals,
    language_badge: bool,
) -> LayoutJob {
    let strong = visuals.strong_text_color();
    let font = FontId::proportional(18.0);
    let mut job = LayoutJob::default();
    if language_badge && let Some(language) = &segment.language {
        job.append(
            &format!(" {language} "),
            0.0,
            TextFormat {
                font_id: FontId::monospace(11.0),
                color: visuals.weak_text_color(),
                background: visuals.faint_bg_color,
                ..TextFormat::default()
            },
        );
        job.append(" ", 0.0, TextFormat::simple(font.clone(), strong));
    }
    // A gap marker is not speech: the warning colour, in italics, so it is never read as words.
    let text_format = if segment.gap {
        TextFormat {
            italics: true,
            ..TextFormat::simple(font.clone(), visuals.warn_fg_color)
        }
    } else {
        TextFormat::simple(font.clone(), strong)
    };
    job.append(&segment.text, 0.0, text_format);
    job.append(" ", 0.0, TextFormat::simple(font, strong));
    job
}

/// The open interim: the weak text colour.
pub fn interim_layout(text: &str, visuals: &egui::Visuals) -> LayoutJob {
    let mut job = LayoutJob::default();
    job.append(
        text,
        0.0,
        TextFormat::simple(FontId::proportional(18.0), visuals.weak_text_color()),
    );
    job
}

/// The whole transcript as one rich text (what the window shows, segment by segment): finals in
/// the strong text colour (black on the light theme), the open interim after them in the weak one
/// (grey).
pub fn transcript_layout(
    transcript: &Transcript,
    visuals: &egui::Visuals,
    language_badges: bool,
) -> LayoutJob {
    let mut job = LayoutJob::default();
    let mut add = |part: LayoutJob| {
        for section in &part.sections {
            let range = section.byte_range.start.0..section.byte_range.end.0;
            job.append(&part.text[range], 0.0, section.format.clone());
        }
    };
    for segment in &transcript.segments {
        add(segment_layout(segment, visuals, language_badges));
    }
    add(interim_layout(&transcript.interim, visuals));
    job
}
