"""Accounting decisions: months, APEL records and messages, the usage report's sums."""

from __future__ import annotations

import calendar
import uuid

from hypothesis import given
from hypothesis import strategies as st

from csctl.plan.accounting.apel import (
    FIELDS,
    HEADER,
    MAX_BYTES,
    MAX_RECORDS,
    Site,
    clean,
    messages,
    records,
    vm_uuid,
)
from csctl.plan.accounting.report import NO_JOBS, UNKNOWN_VM, usage
from csctl.plan.accounting.usage import JobUsage, VMUsage, cpu_by_month, job_totals, month_slices, share

SITE = Site("CA-TEST-T2", "pool.test", "HEPSPEC", "/atlas/Role=production")
HOUR = 3600


def t(year: int, month: int, day: int, hour: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, 0, 0))


def vm(
    csctl_id="a-1234abcd-0", booted=None, terminated=None, cores=4, vm_type="big", cloud="A", **kw
) -> VMUsage:
    booted = t(2026, 1, 10) if booted is None else booted
    return VMUsage(
        csctl_id, cloud, "i-1", vm_type, "img-1", "m1", cores, 8000, 40, kw.get("benchmark", 10.0),
        booted, None, None, terminated, terminated or booted,
    )  # fmt: skip


def job(
    ended, wall, cpu, owner="alice", group="atlas", cores=1, csctl_id="a-1234abcd-0", name="j"
) -> JobUsage:
    return JobUsage(name, csctl_id, owner, group, cores, wall, cpu, ended)


def fields(record_text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in record_text.splitlines())


# -- months ----------------------------------------------------------------------------


def test_a_life_within_one_month_is_one_slice():
    assert list(month_slices(t(2026, 1, 10), t(2026, 1, 11))) == [("2026-01", t(2026, 1, 10), t(2026, 1, 11))]


def test_a_life_across_new_year_is_cut_at_each_boundary():
    slices = list(month_slices(t(2025, 12, 31, 12), t(2026, 2, 1, 6)))
    assert slices == [
        ("2025-12", t(2025, 12, 31, 12), t(2026, 1, 1)),
        ("2026-01", t(2026, 1, 1), t(2026, 2, 1)),
        ("2026-02", t(2026, 2, 1), t(2026, 2, 1, 6)),
    ]


@given(st.integers(t(2020, 1, 1), t(2030, 1, 1)), st.integers(0, 400 * 86400))
def test_slices_cover_the_life_exactly(start, length):
    slices = list(month_slices(start, start + length))
    assert slices[0][1] == start and slices[-1][2] == start + length
    assert all(a[2] == b[1] for a, b in zip(slices, slices[1:], strict=False))
    assert sum(hi - lo for _, lo, hi in slices) == length


def test_a_job_is_shared_by_the_time_it_ran_in_each_interval():
    j = job(ended=t(2026, 2, 1, 1), wall=2 * HOUR, cpu=100)
    assert share(j, t(2026, 1, 1), t(2026, 2, 1)) == 0.5
    assert share(job(ended=t(2026, 1, 5), wall=0, cpu=0), t(2026, 1, 1), t(2026, 2, 1)) == 1.0


# -- records -----------------------------------------------------------------------------


def test_vmuuid_is_uuid5_of_pool_and_id():
    assert vm_uuid("pool.test", "a-1234abcd-0") == str(
        uuid.uuid5(uuid.NAMESPACE_URL, "csctl:pool.test/a-1234abcd-0")
    )


def test_a_running_vm_is_started_with_no_end_and_its_wall_time_so_far():
    now = t(2026, 1, 10, 5)
    (record,) = records([vm()], cpu_by_month([job(t(2026, 1, 10, 4), 3 * HOUR, 5000.4)]), SITE, now)
    got = fields(record.text(now))
    assert got["Status"] == "started" and "EndTime" not in got
    assert (got["StartTime"], got["WallDuration"], got["CpuDuration"]) == (
        str(t(2026, 1, 10)),
        "18000",
        "5000",
    )
    assert (got["LocalUserId"], got["LocalGroupId"], got["CloudType"]) == ("pool.test", "big", "csctl")
    assert (got["BenchmarkType"], got["Benchmark"], got["FQAN"]) == (
        "HEPSPEC",
        "10.0",
        "/atlas/Role=production",
    )
    assert list(got) == [f for f in FIELDS if f in got]  # APEL's order


def test_a_vm_across_a_month_boundary_gives_one_record_per_month_that_add_up():
    booted, ended = t(2026, 1, 31, 20), t(2026, 2, 1, 4)
    jobs = cpu_by_month([job(t(2026, 2, 1, 2), 4 * HOUR, 3600), job(t(2026, 1, 31, 23), HOUR, 600)])
    first, second = records([vm(booted=booted, terminated=ended)], jobs, SITE, t(2026, 3, 1))
    a, b = fields(first.text(0)), fields(second.text(0))
    assert (first.month, second.month) == ("2026-01", "2026-02")
    assert (a["Status"], a["EndTime"], b["Status"], b["EndTime"]) == (
        "started", str(t(2026, 2, 1)), "completed", str(ended),
    )  # fmt: skip
    assert int(a["WallDuration"]) + int(b["WallDuration"]) == ended - booted
    assert (a["CpuDuration"], b["CpuDuration"]) == ("2400", "1800")  # 600 + half of 3600; the other half
    assert a["VMUUID"] == b["VMUUID"]


def test_cpu_of_a_run_before_the_vms_first_month_counts_in_that_month():
    # a job evicted elsewhere in December and finished on this VM in January
    made = records(
        [vm(booted=t(2026, 1, 1, 1), terminated=t(2026, 1, 2))],
        cpu_by_month([job(t(2026, 1, 1, 2), 2 * HOUR, 700)]),
        SITE,
        0,
    )
    assert [(r.month, fields(r.text(0))["CpuDuration"]) for r in made] == [("2026-01", "700")]


@given(
    st.lists(
        st.tuples(st.integers(t(2025, 11, 1), t(2026, 4, 1)), st.integers(0, 90 * 86400), st.floats(0, 1e6)),
        max_size=30,
    )
)
def test_cpu_by_month_keeps_every_second(runs):
    jobs = [
        job(end, wall, cpu, csctl_id=f"a-{i % 3}-0", name=str(i)) for i, (end, wall, cpu) in enumerate(runs)
    ]
    total = sum(sum(months.values()) for months in cpu_by_month(jobs).values())
    assert abs(total - sum(j.cpu for j in jobs)) <= 1e-6 * max(1.0, total)


def test_from_month_leaves_earlier_months_out():
    made = records([vm(booted=t(2025, 11, 20), terminated=t(2026, 1, 3))], {}, SITE, t(2026, 2, 1), "2025-12")
    assert [r.month for r in made] == ["2025-12", "2026-01"]


def test_the_digest_ignores_the_creation_time_and_changes_with_the_usage():
    one = records([vm()], {}, SITE, t(2026, 1, 10, 5))[0]
    again = records([vm()], {}, SITE, t(2026, 1, 10, 5))[0]
    later = records([vm()], {}, SITE, t(2026, 1, 10, 6))[0]
    assert one.digest == again.digest != later.digest
    assert one.text(1) != one.text(2)


def test_untrusted_values_cannot_add_lines_or_separators():
    hostile = vm()._replace(image="img\n%%\nSiteName: EVIL\r\x1b[31m" + "x" * 400)
    (record,) = records([hostile], {}, SITE, t(2026, 1, 11))
    text = record.text(0)
    assert "%%" not in text.splitlines() and all(": " in line for line in text.splitlines())
    image = fields(text)["ImageId"]
    assert len(image) == 255 and "\n" not in image and "\x1b" not in image
    assert clean("a\u2028b") == "a?b"


# -- messages --------------------------------------------------------------------------


def test_messages_hold_at_most_500_records():
    texts = [f"VMUUID: {i}\nSiteName: S" for i in range(1001)]
    sent = messages(texts)
    assert [m.count("VMUUID") for m in sent] == [MAX_RECORDS, MAX_RECORDS, 1]
    for message in sent:
        assert message.startswith(HEADER + "\n") and message.endswith("\n")
    assert sent[0].split("\n%%\n")[1] == "VMUUID: 1\nSiteName: S"


def test_messages_stay_under_1_mb():
    texts = ["VMUUID: x\nImageId: " + "y" * 9000 for _ in range(400)]
    sent = messages(texts)
    assert len(sent) == 4 and all(len(m.encode()) < MAX_BYTES for m in sent)
    assert sum(m.count("VMUUID") for m in sent) == 400


# -- the report --------------------------------------------------------------------------


def report(vms, jobs: dict[str, list[JobUsage]], since: int, until: int, by: str, now: int):
    """The report from job lists, as the ledger's sums give it."""
    flat = [j for listed in jobs.values() for j in listed]
    ran = {i for i, listed in jobs.items() if listed}
    return usage(vms, job_totals(flat, since, until, by), ran, since, until, by, now)


def test_report_by_cloud_counts_provisioned_busy_and_idle_vms():
    since, until = t(2026, 1, 1), t(2026, 2, 1)
    vms = [
        vm("a-1-0", t(2026, 1, 10), t(2026, 1, 10, 10), cores=4),
        vm("b-1-0", t(2026, 1, 12), t(2026, 1, 12, 2), cloud="B"),
    ]
    jobs = {"a-1-0": [job(t(2026, 1, 10, 9), 5 * HOUR, 4 * 5 * HOUR * 0.9, cores=4, csctl_id="a-1-0")]}
    rows, total = report(vms, jobs, since, until, "cloud", t(2026, 3, 1))
    a, b = rows
    assert (a.key, a.provisioned_core_hours, a.busy_core_hours, a.vm_hours, a.jobs, a.vms) == (
        "A",
        40,
        20,
        10,
        1,
        1,
    )
    assert (a.utilisation, round(a.cpu_efficiency, 6), a.never_ran_a_job) == (0.5, 0.9, 0)
    assert (b.key, b.provisioned_core_hours, b.never_ran_a_job, b.utilisation) == ("B", 8, 1, 0)
    assert (total.provisioned_core_hours, total.vms, total.never_ran_a_job) == (48, 2, 1)


def test_report_by_owner_shares_a_vms_time_by_busy_core_hours():
    vms = [
        vm("a-1-0", t(2026, 1, 10), t(2026, 1, 10, 10), cores=2),
        vm("a-2-0", t(2026, 1, 11), t(2026, 1, 11, 1)),
    ]
    jobs = {
        "a-1-0": [
            job(t(2026, 1, 10, 4), 3 * HOUR, 100, owner="alice", csctl_id="a-1-0"),
            job(t(2026, 1, 10, 4), HOUR, 100, owner="bob", csctl_id="a-1-0"),
        ],
        "z-9-0": [job(t(2026, 1, 20), HOUR, 10, owner="carol", csctl_id="z-9-0")],
    }
    rows, total = report(vms, jobs, t(2026, 1, 1), t(2026, 2, 1), "owner", t(2026, 3, 1))
    got = {r.key: r for r in rows}
    assert set(got) == {"alice", "bob", "carol", NO_JOBS}
    assert (got["alice"].provisioned_core_hours, got["bob"].provisioned_core_hours) == (15, 5)
    assert got[NO_JOBS].provisioned_core_hours == 4 and got[NO_JOBS].never_ran_a_job == 1
    assert got["carol"].provisioned_core_hours == 0 and got["carol"].jobs == 1
    assert total.provisioned_core_hours == 24 and total.jobs == 3


def test_a_job_of_a_vm_the_ledger_lost_is_counted_by_cloud_as_unknown():
    jobs = {"z-9-0": [job(t(2026, 1, 20), HOUR, 10, csctl_id="z-9-0")]}
    rows, _ = report([], jobs, t(2026, 1, 1), t(2026, 2, 1), "type", t(2026, 3, 1))
    assert [(r.key, r.jobs, r.busy_core_hours) for r in rows] == [(UNKNOWN_VM, 1, 1)]


@given(
    st.lists(
        st.tuples(st.integers(0, 60 * 86400), st.integers(0, 20 * 86400), st.integers(1, 16)), max_size=8
    ),
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 70 * 86400), st.integers(0, 5 * 86400)), max_size=20
    ),
    st.sampled_from(["owner", "group", "cloud", "type"]),
)
def test_every_grouping_adds_up_to_the_same_provisioned_total(lives, runs, by):
    base = t(2026, 1, 1)
    vms = [
        vm(f"a-{i}-0", base + s, base + s + n, cores=c, cloud="AB"[i % 2])
        for i, (s, n, c) in enumerate(lives)
    ]
    jobs: dict[str, list[JobUsage]] = {}
    for k, (i, end, wall) in enumerate(runs):
        if i < len(vms):
            jobs.setdefault(vms[i].csctl_id, []).append(
                job(base + end, wall, wall / 2, owner="ab"[k % 2], csctl_id=vms[i].csctl_id, name=str(k))
            )
    since, until = base + 10 * 86400, base + 40 * 86400
    _, by_cloud = report(vms, jobs, since, until, "cloud", base + 100 * 86400)
    _, grouped = report(vms, jobs, since, until, by, base + 100 * 86400)
    assert abs(grouped.provisioned_core_hours - by_cloud.provisioned_core_hours) < 1e-6
    assert abs(grouped.busy_core_hours - by_cloud.busy_core_hours) < 1e-6
    assert grouped.vms == by_cloud.vms
