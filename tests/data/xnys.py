"""Prints NYSE's exceptions to "every weekday is a full session" for 2000-2030, as
exchange_calendars' XNYS calendar (PyPI) has them: one line per weekday that was closed
or closed early, `YYYY-MM-DD<TAB>closed` or `YYYY-MM-DD<TAB>early HH:MM` (New York).

tests/data/xnys_2000_2030.tsv is this script's output; the test
`nyse_calendar_matches_exchange_calendars_xnys` compares the embedded calendar with it, and
.ci/run regenerates it from the package and fails if the two differ.

    python3 -m pip install exchange_calendars && python3 tests/data/xnys.py > tests/data/xnys_2000_2030.tsv
"""
import datetime as dt

import exchange_calendars as xc

cal = xc.get_calendar("XNYS", start="2000-01-01", end="2030-12-31")
closes = {
    ts.date(): close.tz_convert("America/New_York").strftime("%H:%M")
    for ts, close in cal.schedule["close"].items()
}
day = dt.date(2000, 1, 1)
while day <= dt.date(2030, 12, 31):
    if day.weekday() < 5:
        close = closes.get(day)
        if close is None:
            print(f"{day}\tclosed")
        elif close != "16:00":
            print(f"{day}\tearly {close}")
    day += dt.timedelta(days=1)
