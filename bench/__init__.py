"""The delivery benchmark (issues 6 and 18): ``python -m bench [--quick] [--json PATH] [--only SECTION] [--skip
SECTION] [--details]``, from the repository root.

Needs the ``bench`` extra (``pip install -e '.[bench]'``: Replicate's official client).

Not part of the test suite and not shipped in the wheel. Everything runs on 127.0.0.1: the fake
prediction API and the fake Discord of ``tests/fakes`` in this process, every bot and library client in
its own process. Five clients, each against its own rate-limited fake API: the real bot polling
(:mod:`bench.botproc`), the real bot with webhooks, the official client bot (:mod:`bench.peerbot`: the
peer a member would otherwise run, a discord.py bot on Replicate's ``async_run`` that uploads to its own
fake Discord the same way), Replicate's official client (the file in hand: the reference for end
detection) and the naive create / sleep 1 s / get loop. It measures

* per prediction time (0.5 s, 4 s, 5 s, 30 s), one at a time and 50 at once: delivery overhead (from the
  fake API marking the prediction succeeded to the fake Discord storing the message with the image), its
  ratios to the naive loop's and the official client bot's, detection lag, API requests per job, 429s (the
  API's, and Discord's for message edits, which discord.py waits out quietly); and
  for the bot, the first percentage its message showed after the prediction began processing (with
  webhooks, also after the first ``logs`` webhook carrying one) and how many different percentages a job
  showed (:mod:`bench.progress`);
* scale: 1000 jobs at once with 5 s predictions: completion, peak resident memory of the bot
  process, largest event-loop stall, 429s received from the fake API and from the fake Discord's edit limit;
* sustained: 5 minutes of ``/imagine`` at the full creates budget (9 a second, the rate it refills at:
  matched, not exceeded) with 30 s predictions, a few hundred running at once, through one polling bot
  process: delivered, 429s (API and Discord edits), overhead, first percentage, requests per job, peak
  memory, largest stall;
* scale-out: the same burst of jobs (600, quick: 120, 0.5 s predictions) through 1, 2 and 4 bot
  processes on one PostgreSQL database (one shard each) and through 1 process on SQLite, each
  against a fresh fake API with Replicate's rate limits: jobs a minute (against the one-process
  PostgreSQL deployment and against the ceiling the API creates budget sets), delivery overhead,
  429s received. PostgreSQL is the tests' server (``IMAGINE_TEST_POSTGRES_URL``, default
  ``postgresql://postgres@127.0.0.1:5432/test``), where it makes and drops a database per
  deployment; where none answers the section is skipped, saying why.

It prints the Markdown of README's Performance section (one table, then the sustained, scale and
scale-out lines and every target checked; :func:`bench.report.markdown`), with ``--details`` the
detailed fixed-width tables too (:mod:`bench.details`), and with ``--json PATH`` writes every figure as
JSON with the machine they came from and every target checked. ``--quick`` is a scaled-down run (about
three minutes); ``--only SECTION`` / ``--skip SECTION`` (``overhead``, ``scale``, ``sustained``,
``scale-out``) run a part alone or leave one out; ``--scale-rate N`` pushes the scale run's interactions
at N per second instead of all at once. :mod:`bench.run` says how the sections run (:mod:`bench.plan` what
each measures), :mod:`bench.measure` how each figure is read off the fakes, :mod:`bench.targets` what the
targets are, and :mod:`bench.report` how the results are printed.
"""
