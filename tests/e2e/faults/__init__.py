"""Fault injection against the real servers: does anything get lost or applied twice?

- `servers`: the run's database and vhost, and the operator commands that break them;
- `processes`: the engine's processes (`recourse worker|relay|scheduler`) as subprocesses;
- `relay_crash`: a relay process that dies between publishing and marking;
- `poison`: bodies the intake must refuse (`malformed`, `misrouted`, `unauthorized_producer`);
- `driver`: publishes a generated load (`testbed.stories`) from four publishers,
  each key on one of them, every event twice, and records the order of publication;
- `injectors`: the faults, injected while the load is in flight, and their recovery times;
- `oracle`: the checks against a replay of the load in the order it was published;
- `run`, `report`: one run end to end, and its table for docs/reliability.md.

`python -m tests.e2e.faults --events N --contracts M` runs it at any scale; the CI run is
`tests/e2e/test_faults_run.py`.
"""
