"""The benchmark harness counts the fresh memory a stage touches and the CPU it spends in the
kernel, and its table sums them."""

import resource

import numpy as np

from benchmarks.harness import DAILY_RUN, END_TO_END, fresh_memory_touched, kernel_cpu_seconds, table

MIB = 2**20


def test_touching_new_memory_counts_its_bytes_in_small_pages_and_huge_ones():
    # Upper bounds are loose: the kernel counts huge page faults for the whole machine, and the
    # other test process may fault some meanwhile. Counting each huge fault as a small page (or
    # each small one as huge) is off by 512x.
    before = fresh_memory_touched()
    huge = np.ones(64 * MIB, dtype=np.uint8)  # numpy asks for huge pages; every byte written
    assert 0.9 * 64 * MIB <= fresh_memory_touched() - before <= 4 * 64 * MIB
    before = fresh_memory_touched()
    # small pages: glibc maps this afresh (past its largest mmap threshold, 32 MiB) and asks for
    # no huge ones
    buffer = bytearray(40 * MIB)
    buffer[::4096] = b"\x01" * (40 * MIB // 4096)
    assert 0.9 * 40 * MIB <= fresh_memory_touched() - before <= 4 * 40 * MIB
    assert huge.sum() == 64 * MIB


def test_faulting_in_fresh_memory_counts_as_kernel_time():
    # 256 MiB in small pages: 65,536 faults, each zeroed by the kernel, against one memset in
    # user space. Counting user time instead fails the comparison.
    user, kernel = resource.getrusage(resource.RUSAGE_SELF).ru_utime, kernel_cpu_seconds()
    buffer = bytearray(256 * MIB)
    spent_in_kernel = kernel_cpu_seconds() - kernel
    assert spent_in_kernel >= 0.02
    assert spent_in_kernel > resource.getrusage(resource.RUSAGE_SELF).ru_utime - user
    assert len(buffer) == 256 * MIB


def test_the_end_to_end_rows_sum_their_stages_fresh_memory_and_kernel_seconds():
    fresh = dict(zip(END_TO_END, [1.5, 0.75, 0.25, 0.25, 0.125], strict=True))  # 2.875 GiB
    kernel = dict(zip(END_TO_END, [9.0, 4.5, 0.5, 0.25, 0.05], strict=True))  # 14.3 s
    stages = {
        name: {"seconds": 1.0, "peak_rss_mib": 100.0, "fresh_gib": gib, "kernel_seconds": kernel[name]}
        for name, gib in fresh.items()
    }
    stages["snapshots"] |= {"apply_seconds": 0.4, "velocity_seconds": 0.6}
    results = [{"prospects": 1000, "setup": {"leads": 530}, "stages": stages}]
    floors = {
        "group_bys_seconds": 0.1,
        "intervals_seconds": 1.0,
        "fresh_memory_seconds_per_gib": 4.0,
        "recycled_memory_seconds_per_gib": 0.25,
    }

    text = table(results, floors)

    assert f"| **end to end** ({', '.join(END_TO_END)}) | 5.0 s, 100 MiB |" in text
    assert "| end to end: fresh memory touched | 2.9 GiB |" in text
    assert "| end to end: CPU seconds in the kernel | 14.3 s |" in text
    assert "a GiB of fresh memory touched in 4.00 s, the same GiB again at once in 0.25 s." in text


def test_the_daily_run_row_sums_the_days_stages_with_their_highest_peak():
    seconds = {"incremental": 4.25, "daily_snapshot": 7.0, "daily_kpis": 53.5}  # 64.75 s
    peaks = {"incremental": 1500.0, "daily_snapshot": 900.0, "daily_kpis": 2944.0}
    stages = {name: {"seconds": seconds[name], "peak_rss_mib": peaks[name]} for name in DAILY_RUN}
    stages["daily_snapshot"] |= {"apply_seconds": 2.75, "velocity_seconds": 4.25}
    stages["reconcile"] = {"seconds": 27.0, "peak_rss_mib": 3600.0}  # not the day's

    text = table([{"prospects": 1000, "setup": {"leads": 530}, "stages": stages}])

    assert f"| **daily run** ({', '.join(DAILY_RUN)}) | 64.8 s, 2,944 MiB |" in text
    assert "| daily_snapshot: applied, then velocity | 2.8 s + 4.2 s |" in text
    assert "**end to end**" not in text  # its stages did not all run
