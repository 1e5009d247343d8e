"""faster-whisper on the same clips, for `bash .ci/bench-offline` (runs in a throwaway venv).

Same measurements as `cargo bench --bench offline`: model load, per-utterance time from the end
of the audio to the final text (the whole clip transcribed at once), real-time factor, word error
rate, peak memory. Greedy decoding (BENCH_BEAM=5: beam search), English, no VAD, word timestamps on, two CPU threads.
"""
import json
import os
import re
import resource
import sys
import time
import wave

from faster_whisper import WhisperModel

NUMBERS = "zero one two three four five six seven eight nine ten".split()


def normalise(text):
    text = text.lower().replace("colour", "color").replace("favourite", "favorite")
    words = re.sub(r"[^\w']", " ", text).split()
    return [NUMBERS[int(w)] if w.isdigit() and int(w) < len(NUMBERS) else w for w in words]


def edits(r, h):
    row = list(range(len(h) + 1))
    for i, rw in enumerate(r):
        prev = row[:]
        row[0] = i + 1
        for j, hw in enumerate(h):
            row[j + 1] = min(prev[j + 1] + 1, row[j] + 1, prev[j] + (rw != hw))
    return row[len(h)]


def main():
    clips, model_dir = sys.argv[1], sys.argv[2]
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    beam = int(os.environ.get("BENCH_BEAM", "1"))
    wavs = sorted(f for f in os.listdir(clips) if f.endswith(".wav"))
    refs = open(os.path.join(clips, "refs.txt")).read().splitlines()
    t = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=threads)
    load = time.perf_counter() - t

    def run(path):
        segments, _ = model.transcribe(
            path, language="en", beam_size=beam, best_of=beam, temperature=0.0,
            condition_on_previous_text=False, vad_filter=False, word_timestamps=True,
            without_timestamps=True)
        return " ".join(s.text.strip() for s in segments)

    run(os.path.join(clips, wavs[0]))  # warm-up, not counted
    latencies, audio, hyps = [], 0.0, []
    for name in wavs:
        path = os.path.join(clips, name)
        with wave.open(path) as w:
            audio += w.getnframes() / w.getframerate()
        t = time.perf_counter()
        hyps.append(run(path))
        latencies.append(time.perf_counter() - t)
    e = sum(edits(normalise(r), normalise(h)) for r, h in zip(refs, hyps))
    n = sum(len(normalise(r)) for r in refs)
    s = sorted(latencies)
    print(json.dumps({
        "engine": f"faster-whisper (CTranslate2), beam {beam}",
        "load_s": round(load, 3), "clips": len(wavs), "audio_s": round(audio, 2),
        "latency_p50_s": round(s[len(s) // 2], 3), "latency_max_s": round(s[-1], 3),
        "rtf": round(sum(latencies) / audio, 4), "wer": round(e / n, 4),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
