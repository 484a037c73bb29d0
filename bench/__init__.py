"""Benchmarks of the API against the emulator: ``make bench`` (about five minutes) or
``python -m bench --quick`` (about one).

run.py       orchestration, the load phase, results.json and the printed tables
servers.py   the emulator, gunicorn and Redis as child processes on loopback
load.py      wrk runs; wrk/rotate_tokens.lua rotates users' tokens and reports percentiles
micro.py     in-process micro-benchmarks (token cache scaling and memory, validation cost)
profile.py   py-spy sampling of the API's workers, summed by part of the request
report.py    figures, Markdown and chart.png
apps/        bench-only WSGI apps to compare with: a bare proxy and the naive OBO pattern
"""
