"""The interactive viewer on a 24-hour single-lead recording: file size, and whether headless Chromium
opens it and runs the zoom/jump/scroll actions (the page reports its last redraw time in its state).

    nice -n 19 .venv/bin/python benchmarks/bench_viewer_24h.py
    /usr/bin/time -v chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=60000 \
        --window-size=1200,900 --dump-dom "file:///tmp/holter24h.html?action=all,zoomin,jump:43200,zoomin,right"

The recording is synthetic (a spike every 0.8 s, baseline wander, noise; 25.9 million samples at
300 Hz) and the map a smoothed copy of the spikes: what is measured is the viewer, not a model.
"""

import time

import numpy as np

from ecgzoo.report.viewer import write_viewer

fs, n = 300.0, 300 * 86400
t = np.arange(n, dtype=np.float32) / fs
rng = np.random.default_rng(0)
beat = (np.mod(t, 0.8) < 0.03).astype(np.float32)
sig = (beat * 1.2 + 0.05 * np.sin(2 * np.pi * 0.3 * t) + 0.02 * rng.standard_normal(n).astype(np.float32))[None]
maps = {"cam": np.convolve(beat, np.ones(30) / 30, mode="same").astype(np.float32)}
win = [(a, a + 10.0, [0.7, 0.2, 0.1]) for a in np.arange(0, 86400, 10.0)]
t0 = time.time()
p = write_viewer("/tmp/holter24h.html", title="synthetic 24 h", signal=sig, fs=fs, units="mV", maps=maps,
                 classes=["N", "A", "O"], windows=win, facts={"rate": "300 Hz"})
print("written", p.stat().st_size / 1e6, "MB in", time.time() - t0, "s")
