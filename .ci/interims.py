#!/usr/bin/env python3
"""Interims while speaking: streams CLIP at real time through `transcribe --offline --realtime` and
times every message on arrival. Usage: python3 .ci/interims.py BIN MODEL_DIR CLIP.wav [LANGUAGE]"""
import json, subprocess, sys, time
bin_, model, wav = sys.argv[1], sys.argv[2], sys.argv[3]
lang = sys.argv[4] if len(sys.argv) > 4 else "en"
t0 = time.monotonic()
p = subprocess.Popen([bin_, "transcribe", "--offline", "--model", model, "--language", lang, "--realtime",
                      "--format", "jsonl", "--quiet", wav], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
events = []
for line in p.stdout:
    try: d = json.loads(line)
    except Exception: continue
    events.append((time.monotonic() - t0, d.get("is_final"), len((d.get("transcript") or "").split())))
p.wait()
interims = [e for e in events if not e[1]]
finals = [e for e in events if e[1] and e[2] > 0]
gaps = [b[0] - a[0] for a, b in zip(events, events[1:])]
print(f"{model.split('/')[-1]}: {len(interims)} interims, {len(finals)} finals, first text at {events[0][0]:.2f} s, "
      f"longest gap between updates {max(gaps):.2f} s, median gap {sorted(gaps)[len(gaps)//2]:.2f} s, total {events[-1][0]:.2f} s")
