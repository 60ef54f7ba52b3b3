"""The delivery benchmark (issue 6): ``python -m bench [--quick] [--json PATH]``, from the repository root.

Needs the ``bench`` extra (``pip install -e '.[bench]'``: Replicate's official client).

Not part of the test suite and not shipped in the wheel. Everything runs on 127.0.0.1: the fake
prediction API and the fake Discord of ``tests/fakes`` in this process, the real bot in its own
process (:mod:`bench.botproc`). It measures

* delivery overhead: from the moment the fake API marks a prediction succeeded to the moment the
  fake Discord receives the message with the image, p50 / p95 / max, for 0.5 s, 5 s and 30 s
  predictions, one at a time and 50 at once;
* API requests per job (creates, polls, downloads) for the same cases;
* scale: 1000 jobs at once with 5 s predictions: completion, peak resident memory of the bot
  process, largest event-loop stall, 429s received from the fake API;
* the same cases through two baselines on identical fake APIs: Replicate's official Python client
  (``replicate.async_run`` with its defaults) and the naive create / sleep 1 s / get loop;
* scale-out: the same burst of jobs (600, quick: 120, 0.5 s predictions) through 1, 2 and 4 bot
  processes on one PostgreSQL database (one shard each) and through 1 process on SQLite, each
  against a fresh fake API with Replicate's rate limits: jobs a minute (against the one-process
  PostgreSQL deployment and against the ceiling the API creates budget sets), delivery overhead,
  429s received. PostgreSQL is the tests' server (``IMAGINE_TEST_POSTGRES_URL``, default
  ``postgresql://postgres@127.0.0.1:5432/test``), where it makes and drops a database per
  deployment; where none answers the section is skipped, saying why.

It prints a fixed-width table and, with ``--json PATH``, writes the same figures as JSON with the
machine they came from and every target checked. ``--quick`` is a scaled-down run (about two minutes);
``--scale-rate N`` pushes the scale run's interactions at N per second instead of all at once.
:mod:`bench.run` says how the phases run, :mod:`bench.measure` how each figure is read off the
fakes, :mod:`bench.report` what the targets are.
"""
