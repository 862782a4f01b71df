"""`pyk bench`: benchmark runs and tuning sweeps against pyk or any Kafka-protocol broker.

Modules, top to bottom:

    cli.py         argument parsing, the command's flow (pyk/cli.py delegates `bench` here)
    sweep.py       one workload per value of a client, topic or broker setting
    runner.py      one run: topic set-up, producer worker processes, ticks, totals
    phases.py      what both clients share: prefill, e2e end, progress line, the Outcome of a run
    generator.py   the raw client: pipelined Produce from pre-built batches, header-counted Fetch
    rdkafka.py     the librdkafka client (confluent-kafka), honouring -X / -Y properties
    wire.py        the bench's connection (asyncio, writev, in-order responses) and cluster set-up
    batches.py     record batch templates, latency stamps, record counting by batch headers
    stats.py       HDR latency histograms, per-tick intervals, CPU from /proc, totals
    report.py      table, JSON, PNG plots (matplotlib, the `bench` extra)
    localbroker.py a local `pyk serve` for --start-broker and broker-key sweeps
    workload.py    the settings of a run, librdkafka property names and defaults

Nothing here is imported by the broker.
"""
