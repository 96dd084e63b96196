"""What the benchmarks and the end-to-end tests run against, kept in one place for both.

- `workload`: the benchmarks' fixed mix of contract stories, one interleaved stream;
- `stories`: causally ordered loads of whole stories, for the fault and process runs;
- `scratch`: a throwaway PostgreSQL database and RabbitMQ vhost for one run.

The two generators build their envelopes alike (`stories.envelope`) but draw different
stories, and stay two: the figures of docs/performance.md were measured on `workload`'s stream
and the fault suite's findings on `stories`' seeds, and each gives its arguments' events byte
for byte, so folding one into the other would change what both measure.
"""
