//! One connection of a dictation, and what the dictation does between connections: replay the
//! kept audio, stream live chunks (a file held back by a full window, rolled over at a quiet
//! chunk), read frames through the inbox, notice a dead peer, and keep collecting audio while
//! waiting to reconnect.

use super::{
    AudioChunk, ConnectionEnd, Dedupe, Dictation, Duration, FinalSegment, Flow, Inbox, Instant,
    Message, SentChunk, SessionError, SessionEvent, SinkExt, Socket, SourceKind, StreamExt,
    WokenReceiver, WordTimestamp, tungstenite,
};

impl Dictation<'_> {
    /// Reports the failure's consequences for the text, and returns it.
    pub(super) fn give_up(&mut self, error: SessionError) -> SessionError {
        if matches!(error, SessionError::NoLastMessage { .. }) {
            self.keep_interim_unconfirmed();
        }
        error
    }

    /// Before a connection starts: unconfirmed audio that the replay limit dropped can never be
    /// recognised now; say where, so the transcript shows the gap.
    pub(super) fn report_gap(&mut self) {
        let Some((start, end)) = self.replay.take_dropped() else {
            return;
        };
        let confirmed = (self.coverage.confirmed_secs * f64::from(self.rate)) as u64;
        let start = start.max(confirmed);
        if end <= start {
            return;
        }
        let rate = f64::from(self.rate);
        let (start_secs, secs) = (start as f64 / rate, (end - start) as f64 / rate);
        tracing::warn!(
            start_secs,
            secs,
            "audio lost: the replay limit was hit during an outage"
        );
        self.events.send(SessionEvent::Gap { start_secs, secs });
    }

    /// The open interim becomes a final marked unconfirmed rather than vanishing.
    pub(super) fn keep_interim_unconfirmed(&mut self) {
        let text = std::mem::take(&mut self.last_interim);
        if text.trim().is_empty() {
            return;
        }
        self.events.send(SessionEvent::Final(FinalSegment {
            text: text.trim().to_owned(),
            language: None,
            words: Vec::new(),
            span: None,
            is_last: false,
            audio_sent_secs: self.summary.audio_secs_sent,
            unconfirmed: true,
        }));
    }

    /// Whether the source must wait: a file never runs further ahead of the confirmed audio than
    /// the replay window.
    pub(super) fn held_back(&self) -> bool {
        self.config.source == SourceKind::File && self.replay.is_full()
    }

    /// While waiting to reconnect, keeps taking audio from the source (capture never stops) into
    /// the replay buffer.
    pub(super) async fn collect_for(
        &mut self,
        delay: Duration,
        chunks: &mut WokenReceiver<AudioChunk>,
    ) {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                chunk = chunks.recv(), if !self.source_done && !self.held_back() => match chunk {
                    Some(chunk) => { self.take_chunk(chunk); }
                    None => self.source_done = true,
                },
            }
        }
    }

    /// Puts a source chunk into the replay buffer; returns it ready to send.
    pub(super) fn take_chunk(&mut self, chunk: AudioChunk) -> SentChunk {
        if let Some(at) = chunk.captured_at {
            self.latencies.push(at.elapsed().as_secs_f64());
        }
        self.live_sample = chunk.first_sample + u64::from(chunk.samples);
        let sent = SentChunk {
            first_sample: chunk.first_sample,
            samples: chunk.samples,
            bytes: tungstenite::Bytes::from(chunk.bytes),
        };
        let dropped = match self.config.source {
            SourceKind::Live => self.replay.push(sent.clone()),
            // A file waits instead (`held_back`): nothing it sent is ever dropped.
            SourceKind::File => {
                self.replay.push_keep(sent.clone());
                0
            }
        };
        if dropped > 0 {
            let dropped_secs = dropped as f64 / f64::from(self.rate);
            if self.noticed.first("replay-overflow") {
                tracing::warn!("replay buffer full: oldest unconfirmed audio dropped");
            }
            self.events
                .send(SessionEvent::ReplayOverflow { dropped_secs });
        }
        sent
    }

    /// One connection: replay, then live audio, until `is_last` or a failure.
    pub(super) async fn run_connection(
        &mut self,
        ws: Socket,
        chunks: &mut WokenReceiver<AudioChunk>,
        end_message: &'static str,
    ) -> ConnectionEnd {
        let (mut sink, mut stream) = ws.split();
        let config = self.config;
        let send_timeout = config.liveness.pong_timeout;
        // This connection's time zero is the first sample it is sent.
        let offset_sample = self.replay.start_sample().unwrap_or(self.live_sample);
        self.coverage.saw_untimed = false;
        self.last_release = Instant::now();
        let mut inbox = Inbox {
            events: self.events,
            forward_raw: config.forward_raw,
            show_words: config.params.word_timestamps,
            error_message: None,
            offset_secs: offset_sample as f64 / f64::from(self.rate),
            progressed: false,
            dedupe: Dedupe::new(&self.coverage),
        };
        let failed = |error: SessionError, inbox: &Inbox| ConnectionEnd::Failed {
            error,
            progressed: inbox.progressed,
        };
        let replay: Vec<SentChunk> = self.replay.chunks().cloned().collect();
        for chunk in replay {
            self.count_sent(&chunk);
            if let Err(e) =
                send_bounded(&mut sink, Message::Binary(chunk.bytes), send_timeout).await
            {
                return failed(e, &inbox);
            }
        }
        let mut finish_deadline = None;
        if self.source_done {
            if let Err(e) = send_bounded(&mut sink, Message::text(end_message), send_timeout).await
            {
                return failed(e, &inbox);
            }
            self.events.send(SessionEvent::Finishing);
            finish_deadline = Some(Instant::now() + config.finish_timeout);
        }
        // `end` sent to have the server confirm a full replay window (not the end of the audio).
        let mut rolling_over = false;
        // A rollover is due: it waits for a quiet chunk (not cutting a word in two), up to this
        // sample.
        let mut rollover_by: Option<u64> = None;
        let mut ping = tokio::time::interval(config.liveness.ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut last_frame = Instant::now();
        let mut last_pong = Instant::now();

        loop {
            let deadline = finish_deadline;
            let held_back = self.held_back() && finish_deadline.is_none() && rollover_by.is_none();
            // Held back with nothing confirmed for a while (or by a server whose finals carry no
            // times, which never confirm anything): have `is_last` confirm it all.
            let rollover_at = held_back.then(|| {
                if self.coverage.saw_untimed {
                    Instant::now()
                } else {
                    self.last_release + config.rollover_after
                }
            });
            tokio::select! {
                // Read before sending: a final or an error frame waiting in the socket is never
                // left behind by a send that fails.
                biased;
                frame = stream.next() => {
                    last_frame = Instant::now();
                    if let Some(Ok(Message::Pong(_))) = &frame {
                        last_pong = last_frame;
                    }
                    // A server still delivering transcripts after `end` is working through a
                    // backlog (a slow offline recogniser, a file sent faster than real time):
                    // the finish timeout counts from its latest message, not from `end`.
                    if finish_deadline.is_some() && matches!(&frame, Some(Ok(Message::Text(_)))) {
                        finish_deadline = Some(Instant::now() + config.finish_timeout);
                    }
                    match inbox.on_frame(frame, self) {
                        Flow::Continue => {}
                        Flow::Last => {
                            let _ = sink.send(Message::Close(None)).await;
                            // Read the server's close (bounded), then we are done.
                            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                                while let Some(Ok(_)) = stream.next().await {}
                            }).await;
                            if rolling_over && !self.source_done {
                                // Everything sent was recognised.
                                let sent_secs = self.live_sample as f64 / f64::from(self.rate);
                                self.coverage.confirm_all(sent_secs);
                                self.replay.release_all();
                                tracing::info!(sent_secs, "replay window confirmed by is_last; new connection");
                                return ConnectionEnd::RolledOver;
                            }
                            return ConnectionEnd::Done;
                        }
                        Flow::Failed(e) => return failed(e, &inbox),
                    }
                }
                () = sleep_until(rollover_at), if rollover_at.is_some() => {
                    rollover_by = Some(self.live_sample + u64::from(self.rate) * ROLLOVER_SEARCH_SECS);
                }
                chunk = chunks.recv(), if !self.source_done && !held_back && !rolling_over => {
                    let message = if let Some(chunk) = chunk {
                        let sent = self.take_chunk(chunk);
                        self.count_sent(&sent);
                        Message::Binary(sent.bytes)
                    } else {
                        self.source_done = true;
                        Message::text(end_message)
                    };
                    let is_end = matches!(message, Message::Text(_));
                    // While looking for a quiet place to roll over, keep the chunk to test it
                    // (`Bytes` is shared, not copied).
                    let searched = match (&message, rollover_by) {
                        (Message::Binary(bytes), Some(_)) => Some(bytes.clone()),
                        _ => None,
                    };
                    if let Err(e) = send_bounded(&mut sink, message, send_timeout).await {
                        // The socket broke while sending: whatever the server sent before that
                        // is still worth reading (finals, an error frame saying why).
                        let drained = tokio::time::timeout(Duration::from_millis(500), async {
                            loop {
                                match inbox.on_frame(stream.next().await, self) {
                                    Flow::Continue => {}
                                    Flow::Last => return true,
                                    Flow::Failed(_) => return false,
                                }
                            }
                        }).await;
                        if drained == Ok(true) {
                            return ConnectionEnd::Done;
                        }
                        let error = match inbox.error_message.take() {
                            Some(message) => SessionError::ServerReported { message },
                            None => e,
                        };
                        return failed(error, &inbox);
                    }
                    if is_end {
                        self.events.send(SessionEvent::Finishing);
                        finish_deadline = Some(Instant::now() + config.finish_timeout);
                    } else if rollover_by.is_some_and(|by| {
                        // Decoded only while looking for a quiet place, not for every chunk.
                        self.live_sample >= by
                            || searched.as_ref().is_some_and(|b| is_quiet(b, config.params.encoding))
                    }) {
                        rollover_by = None;
                        if let Err(e) = send_bounded(&mut sink, Message::text(end_message), send_timeout).await {
                            return failed(e, &inbox);
                        }
                        rolling_over = true;
                        finish_deadline = Some(Instant::now() + config.finish_timeout);
                    }
                }
                _ = ping.tick() => {
                    let silent_for = last_frame.elapsed();
                    if last_pong.elapsed() > config.liveness.pong_timeout
                        || (!self.source_done && silent_for > config.liveness.silence_timeout)
                    {
                        let error = SessionError::Dropped {
                            detail: format!("no answer from the server for {} s", silent_for.as_secs()),
                        };
                        return failed(error, &inbox);
                    }
                    if let Err(e) = send_bounded(&mut sink, Message::Ping(tungstenite::Bytes::new()), send_timeout).await {
                        return failed(e, &inbox);
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    let _ = sink.send(Message::Close(None)).await;
                    // A server that stopped answering pings too is gone (a half-open
                    // connection), not just slow to confirm: try again with the audio kept.
                    if last_pong.elapsed() > config.liveness.ping_every * 2 {
                        let error = SessionError::Dropped {
                            detail: format!("no answer from the server for {} s", last_frame.elapsed().as_secs()),
                        };
                        return failed(error, &inbox);
                    }
                    return failed(SessionError::NoLastMessage { secs: config.finish_timeout.as_secs() }, &inbox);
                }
            }
        }
    }

    pub(super) fn count_sent(&mut self, chunk: &SentChunk) {
        self.summary.chunks_sent += 1;
        self.summary.bytes_sent += chunk.bytes.len() as u64;
        let end = (chunk.first_sample + u64::from(chunk.samples)) as f64 / f64::from(self.rate);
        self.summary.audio_secs_sent = self.summary.audio_secs_sent.max(end);
    }

    /// A final arrived (times already on the dictation's timeline): release the audio its words
    /// prove recognised. A final without word times releases nothing.
    pub(super) fn on_final(&mut self, text: &str, words: &[WordTimestamp]) {
        self.summary.finals += 1;
        self.last_interim.clear();
        if let Some(sample) = self.coverage.on_final(text, words, self.rate) {
            let before = self.replay.samples();
            self.replay.release_until(sample);
            if self.replay.samples() < before {
                self.last_release = Instant::now();
            }
        }
    }
}

/// How far past a full replay window a file may be read looking for a quiet place to end a
/// connection.
const ROLLOVER_SEARCH_SECS: u64 = 10;

/// Whether an encoded chunk is near silence (RMS under -40 dBFS).
fn is_quiet(bytes: &[u8], encoding: crate::protocol::Encoding) -> bool {
    let mut samples = Vec::with_capacity(bytes.len());
    crate::audio::encode::Decoder::new(encoding).decode_into(bytes, &mut samples);
    if samples.is_empty() {
        return true;
    }
    let power = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    power < 1e-4
}

/// Sends one frame, bounded in time: a peer that stops reading is a dead connection.
async fn send_bounded(
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
    message: Message,
    limit: Duration,
) -> Result<(), SessionError> {
    match tokio::time::timeout(limit, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SessionError::Dropped {
            detail: e.to_string(),
        }),
        Err(_) => Err(SessionError::Dropped {
            detail: format!("the server took no data for {} s", limit.as_secs()),
        }),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
