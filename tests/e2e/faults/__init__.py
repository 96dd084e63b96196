"""Fault injection against the real servers: does anything get lost or applied twice?

- `servers`: the run's database and vhost, and the operator commands that break them;
- `processes`: the engine's processes (`recourse worker|relay|scheduler`) as subprocesses;
- `relay_crash`: a relay process that dies between publishing and marking;
- `poison`: messages no worker can apply;
- `driver`: publishes a generated load (`tests.e2e.story_generator`), every event twice,
  some out of order;
- `injectors`: the faults, injected while the load is in flight, and their recovery times;
- `oracle`: the checks against a replay of the same load in its causal order;
- `run`, `report`: one run end to end, and its table for docs/reliability.md.

`python -m tests.e2e.faults --events N --contracts M` runs it at any scale; the CI run is
`tests/e2e/test_faults_run.py`.
"""
