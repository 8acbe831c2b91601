"""Tests of the Failure-Dataset-OpenStack loader against the data set's known numbers.

The data set is GPL-3.0 and lives outside the repository, in
``../shared/data/failure-dataset-openstack`` next to the checkout. The numbers checked here
(rows, columns, class counts, distinct and conflicting vectors) are the ones its README states.
Broken copies for the error cases are built in ``tmp_path`` from the real files, never in the
repository.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pase_gym.datasets import (
    CAMPAIGNS,
    CLASS_NAMES,
    ENV_VAR,
    Dataset,
    DatasetError,
    find_data_root,
    group_k_fold,
    group_train_test_split,
    load_all,
    load_campaign,
)
from pase_gym.datasets.campaigns import CAMPAIGN_WORKLOADS, campaign_name
from pase_gym.errors import PaseGymError
from pase_gym.sim.roles import PROFILE_ALIASES
from pase_gym.sim.workload import resolve_profile

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO.parent / "shared" / "data" / "failure-dataset-openstack"

requires_data = pytest.mark.skipif(
    not (DATA_ROOT / "DEPL" / "SEQ.tsv").is_file(),
    reason=f"Failure-Dataset-OpenStack (GPL-3.0, not shipped) is not at {DATA_ROOT}",
)

# The data set's README: rows N and event types d per campaign.
ROWS = {"DEPL": 1076, "NET": 561, "STO": 901}
COLUMNS = {"DEPL": 104, "NET": 59, "STO": 75}
# The README's label table: numeric label -> (class, count), per campaign.
LABELS = {
    "DEPL": {
        1: ("instance_failure", 224),
        2: ("volume_failure", 151),
        3: ("ssh_failure", 41),
        4: ("cleanup_failure", 69),
        5: ("network_failure", 52),
        6: ("no_failure", 539),
    },
    "NET": {
        1: ("instance_failure", 56),
        2: ("network_failure", 195),
        3: ("ssh_failure", 11),
        4: ("no_failure", 299),
    },
    "STO": {
        1: ("volume_failure", 38),
        2: ("instance_failure", 320),
        3: ("cleanup_failure", 157),
        4: ("no_failure", 386),
    },
}
DISTINCT_SEQ = {"DEPL": 683, "NET": 269, "STO": 121}
CONFLICTING_SEQ = {"DEPL": 4, "NET": 1, "STO": 2}
TOTAL_COLUMNS = 112
SHARED_COLUMNS = 35


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    if not DATA_ROOT.is_dir():
        pytest.skip(f"Failure-Dataset-OpenStack (GPL-3.0, not shipped) is not at {DATA_ROOT}")
    return load_all(DATA_ROOT)


def row_hashes(*blocks: np.ndarray, campaign: np.ndarray) -> np.ndarray:
    """One hash per row of the campaign name and the given feature blocks."""
    rows = np.ascontiguousarray(np.hstack(blocks).astype(np.int64))
    return np.array(
        [
            hashlib.sha1(c.encode() + r.tobytes()).hexdigest()
            for c, r in zip(campaign, rows, strict=True)
        ]
    )


def copy_campaign(tmp_path: Path, campaign: str = "NET", *, label_map: bool = True) -> Path:
    """Copy one campaign (and label_map.json) of the real data into ``tmp_path/data``."""
    root = tmp_path / "data"
    (root / campaign).mkdir(parents=True)
    for name in ("SEQ.tsv", "LCS_with_VMM.tsv", "Failure_Labels.txt"):
        shutil.copyfile(DATA_ROOT / campaign / name, root / campaign / name)
    if label_map:
        shutil.copyfile(DATA_ROOT / "label_map.json", root / "label_map.json")
    return root


def edit_lines(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    """Rewrite ``path`` with ``edit(lines) -> lines`` (lines without their newlines)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    path.write_text("\n".join(edit(lines)), encoding="utf-8")


def load_error(root: Path, campaign: str = "NET") -> DatasetError:
    with pytest.raises(DatasetError) as info:
        load_campaign(campaign, root)
    return info.value


# --------------------------------------------------------------------------------------------
# The known numbers
# --------------------------------------------------------------------------------------------


@requires_data
@pytest.mark.parametrize("name", CAMPAIGNS)
def test_campaign_shapes_match_the_readme(dataset: Dataset, name: str) -> None:
    campaign = dataset.parts[name]
    n, d = ROWS[name], COLUMNS[name]
    assert campaign.name == name
    assert len(campaign) == n and campaign.n_events == d
    assert len(campaign.event_names) == len(set(campaign.event_names)) == d
    for array in (campaign.seq, campaign.spurious, campaign.missing):
        assert array.shape == (n, d)
        assert array.dtype == np.int64 and array.min() >= 0
    assert campaign.raw_labels.shape == campaign.labels.shape == (n,)


@requires_data
@pytest.mark.parametrize("name", CAMPAIGNS)
def test_class_counts_match_the_readme(dataset: Dataset, name: str) -> None:
    campaign = dataset.parts[name]
    expected = {cls: count for cls, count in LABELS[name].values()}
    assert campaign.class_counts() == expected
    assert list(campaign.class_counts()) == [cls for cls, _ in LABELS[name].values()]
    raw, counts = np.unique(campaign.raw_labels, return_counts=True)
    assert dict(zip(raw.tolist(), counts.tolist(), strict=True)) == {
        k: count for k, (_, count) in LABELS[name].items()
    }
    assert campaign.label_map == {k: cls for k, (cls, _) in LABELS[name].items()}
    assert set(campaign.labels.tolist()) <= set(CLASS_NAMES)


@requires_data
def test_summary_gives_rows_distinct_vectors_classes_and_columns(dataset: Dataset) -> None:
    summary = dataset.summary()
    assert list(summary) == list(CAMPAIGNS)
    for name, s in summary.items():
        assert (s.name, s.rows, s.columns) == (name, ROWS[name], COLUMNS[name])
        assert s.distinct_seq == DISTINCT_SEQ[name]
        assert s.conflicting_seq == CONFLICTING_SEQ[name]
        assert s.class_counts == {cls: count for cls, count in LABELS[name].values()}
        assert s.rows >= s.distinct_seq_lcs >= s.distinct_seq
        assert s.as_dict()["class_counts"] == s.class_counts


@requires_data
@pytest.mark.parametrize("name", CAMPAIGNS)
def test_distinct_and_conflicting_vectors_match_the_readme(dataset: Dataset, name: str) -> None:
    campaign = dataset.parts[name]
    groups = campaign.group_ids()
    assert groups.max() + 1 == len(np.unique(campaign.seq, axis=0)) == DISTINCT_SEQ[name]
    conflicts = campaign.conflicting_groups()
    assert len(conflicts) == CONFLICTING_SEQ[name]
    for conflict in conflicts:
        rows = np.array(conflict.rows)
        assert conflict.campaign == name
        assert len(conflict.class_counts) > 1
        assert sum(conflict.class_counts.values()) == rows.size
        assert (campaign.seq[rows] == campaign.seq[rows[0]]).all()
        assert (groups[rows] == conflict.group).all() and (
            groups == conflict.group
        ).sum() == rows.size


@requires_data
def test_lcs_halves_are_the_spurious_then_missing_columns(dataset: Dataset) -> None:
    for name in CAMPAIGNS:
        campaign = dataset.parts[name]
        lines = (DATA_ROOT / name / "LCS_with_VMM.tsv").read_text().split("\n")
        header = lines[0].split("\t")
        assert header == [*campaign.event_names, *campaign.event_names]
        last = [int(v) for v in lines[-1].split("\t")]
        d = campaign.n_events
        assert campaign.spurious[-1].tolist() == last[:d]
        assert campaign.missing[-1].tolist() == last[d:]


# --------------------------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------------------------


@requires_data
def test_campaigns_align_on_112_columns_35_shared(dataset: Dataset) -> None:
    assert len(dataset.columns) == TOTAL_COLUMNS
    assert list(dataset.columns) == sorted(set(dataset.columns))
    assert len(dataset.shared_columns()) == SHARED_COLUMNS
    shared = set.intersection(*(set(dataset.parts[c].event_names) for c in CAMPAIGNS))
    assert set(dataset.shared_columns()) == shared
    assert dataset.X.shape == (sum(ROWS.values()), TOTAL_COLUMNS)
    assert dataset.present.shape == (3, TOTAL_COLUMNS)
    assert dataset.present.sum(axis=1).tolist() == [COLUMNS[c] for c in CAMPAIGNS]
    assert dataset.campaign.tolist() == [c for c in CAMPAIGNS for _ in range(ROWS[c])]


@requires_data
@pytest.mark.parametrize("name", CAMPAIGNS)
def test_aligned_rows_equal_the_campaign_and_absent_columns_are_zero(
    dataset: Dataset, name: str
) -> None:
    campaign = dataset.parts[name]
    rows = dataset.rows_of(name)
    cols = np.array([dataset.columns.index(e) for e in campaign.event_names])
    absent = ~dataset.present[CAMPAIGNS.index(name)]
    assert rows.size == ROWS[name]
    for aligned, own in (
        (dataset.X, campaign.seq),
        (dataset.spurious, campaign.spurious),
        (dataset.missing, campaign.missing),
    ):
        assert (aligned[np.ix_(rows, cols)] == own).all()
        assert (aligned[np.ix_(rows, np.flatnonzero(absent))] == 0).all()
    assert (dataset.labels[rows] == campaign.labels).all()
    assert (dataset.raw_labels[rows] == campaign.raw_labels).all()
    assert (dataset.row_present()[rows] == ~absent).all()


@requires_data
def test_feature_matrix_kinds_and_names(dataset: Dataset) -> None:
    n = len(dataset)
    assert (dataset.feature_matrix("seq") == dataset.X).all()
    assert (dataset.feature_matrix("missing") == dataset.missing).all()
    assert (dataset.feature_matrix("spurious") == dataset.spurious).all()
    full = dataset.feature_matrix("all")
    assert full.shape == (n, 3 * TOTAL_COLUMNS)
    assert (full[:, TOTAL_COLUMNS : 2 * TOTAL_COLUMNS] == dataset.spurious).all()
    with_present = dataset.feature_matrix("seq", with_present=True)
    assert with_present.shape == (n, 2 * TOTAL_COLUMNS)
    assert (with_present[:, TOTAL_COLUMNS:] == dataset.row_present()).all()
    assert dataset.feature_names("seq") == list(dataset.columns)
    names = dataset.feature_names("all", with_present=True)
    assert len(names) == len(set(names)) == 4 * TOTAL_COLUMNS
    assert names[0] == f"seq:{dataset.columns[0]}" and names[-1].startswith("present:")
    with pytest.raises(DatasetError, match="kind"):
        dataset.feature_matrix("counts")  # type: ignore[arg-type]


@requires_data
def test_to_dataframe(dataset: Dataset) -> None:
    pytest.importorskip("pandas")
    frame = dataset.to_dataframe()
    assert frame.shape == (len(dataset), TOTAL_COLUMNS + 3)
    assert list(frame.columns[:3]) == ["campaign", "label", "group"]
    assert frame.groupby("campaign").size().to_dict() == ROWS


# --------------------------------------------------------------------------------------------
# Groups and duplicate-aware splits
# --------------------------------------------------------------------------------------------


@requires_data
def test_groups_are_exactly_the_identical_rows_of_a_campaign(dataset: Dataset) -> None:
    groups = dataset.group_ids()
    hashes = row_hashes(dataset.X, campaign=dataset.campaign)
    assert groups.max() + 1 == len(set(hashes.tolist())) == sum(DISTINCT_SEQ.values())
    # one hash per group and one group per hash
    pairs = set(zip(groups.tolist(), hashes.tolist(), strict=True))
    assert len(pairs) == groups.max() + 1
    fine = dataset.group_ids(include_lcs=True)
    assert fine.max() + 1 == sum(s.distinct_seq_lcs for s in dataset.summary().values())
    # finer groups never straddle a SEQ group
    assert len(set(zip(fine.tolist(), groups.tolist(), strict=True))) == fine.max() + 1
    assert len(dataset.conflicting_groups()) == sum(CONFLICTING_SEQ.values())


@requires_data
@pytest.mark.parametrize("include_lcs", [False, True])
def test_group_split_keeps_identical_rows_on_one_side(dataset: Dataset, include_lcs: bool) -> None:
    train, test = dataset.train_test_split(test_size=0.3, seed=0, include_lcs=include_lcs)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(dataset)))
    blocks = [dataset.X, dataset.spurious, dataset.missing] if include_lcs else [dataset.X]
    hashes = row_hashes(*blocks, campaign=dataset.campaign)
    assert not set(hashes[train].tolist()) & set(hashes[test].tolist())
    assert 0.2 < test.size / len(dataset) < 0.4
    for name in CAMPAIGNS:
        share = np.isin(dataset.rows_of(name), test).mean()
        assert 0.15 < share < 0.45, (name, share)
    for conflict in dataset.conflicting_groups(include_lcs):
        side = np.isin(np.array(conflict.rows), test)
        assert side.all() or not side.any()


@requires_data
def test_group_split_is_deterministic_given_the_seed(dataset: Dataset) -> None:
    a = dataset.train_test_split(seed=3)
    b = dataset.train_test_split(seed=3)
    c = dataset.train_test_split(seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


@requires_data
def test_row_split_leaks_duplicates_and_the_group_split_does_not(dataset: Dataset) -> None:
    hashes = row_hashes(dataset.X, campaign=dataset.campaign)
    train, test = dataset.train_test_split(by="row")
    assert set(hashes[train].tolist()) & set(hashes[test].tolist())
    with pytest.raises(DatasetError, match="by="):
        dataset.train_test_split(by="vector")  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="test_size"):
        dataset.train_test_split(test_size=1.5)


@requires_data
def test_group_kfold_partitions_rows_without_leaks(dataset: Dataset) -> None:
    k = 5
    folds = dataset.group_kfold(k=k, seed=0)
    assert len(folds) == k
    hashes = row_hashes(dataset.X, campaign=dataset.campaign)
    seen = np.zeros(len(dataset), dtype=np.int64)
    fold_of_hash: dict[str, int] = {}
    for f, (train, test) in enumerate(folds):
        seen[test] += 1
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(dataset)))
        assert not set(hashes[train].tolist()) & set(hashes[test].tolist())
        for h in set(hashes[test].tolist()):
            assert fold_of_hash.setdefault(h, f) == f
        assert 0.7 * len(dataset) / k < test.size < 1.3 * len(dataset) / k
    assert (seen == 1).all()
    again = dataset.group_kfold(k=k, seed=0)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(folds, again, strict=True)), (
        "k-fold is not deterministic"
    )
    other = dataset.group_kfold(k=k, seed=1)
    assert {tuple(t.tolist()) for _, t in folds} != {tuple(t.tolist()) for _, t in other}
    with pytest.raises(DatasetError, match="k"):
        dataset.group_kfold(k=1)


def test_split_functions_on_small_arrays() -> None:
    groups = np.array([0, 0, 1, 2, 2, 2, 3, 4, 5, 5])
    strata = np.array([0, 0, 0, 1, 1, 1, 1, 0, 1, 1])
    train, test = group_train_test_split(groups, strata, test_size=0.4, seed=1)
    assert not set(groups[train].tolist()) & set(groups[test].tolist())
    assert sorted([*train.tolist(), *test.tolist()]) == list(range(10))
    folds = group_k_fold(groups, strata, k=3, seed=1)
    assert sorted(i for _, t in folds for i in t.tolist()) == list(range(10))
    for _, t in folds:
        assert t.size > 0
    with pytest.raises(DatasetError, match="k"):
        group_k_fold(groups, strata, k=7)
    with pytest.raises(DatasetError, match="same length"):
        group_train_test_split(groups, strata[:-1])
    with pytest.raises(DatasetError, match="at least 2 groups"):
        group_train_test_split(np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64))


# --------------------------------------------------------------------------------------------
# Finding the data
# --------------------------------------------------------------------------------------------


def assert_explains_origin(error: DatasetError) -> None:
    message = str(error)
    assert "dessertlab/Failure-Dataset-OpenStack" in message
    assert "GPL-3.0" in message
    assert ENV_VAR in message


def test_missing_folder_explains_where_the_data_comes_from(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as info:
        load_all(missing)
    assert str(missing) in str(info.value)
    assert_explains_origin(info.value)
    assert isinstance(info.value, PaseGymError) and isinstance(info.value, ValueError)


def test_env_var_to_a_missing_folder_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError) as info:
        load_campaign("DEPL")
    assert ENV_VAR in str(info.value) and "nowhere" in str(info.value)
    assert_explains_origin(info.value)


def test_nothing_found_names_the_place_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    with pytest.raises(DatasetError) as info:
        find_data_root()
    tried = (tmp_path / "a" / "shared" / "data" / "failure-dataset-openstack").resolve()
    assert str(tried) in str(info.value) and "working directory" in str(info.value)
    assert_explains_origin(info.value)


@requires_data
def test_default_root_is_found_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(REPO)  # CI and pytest run from the checkout, with ../shared beside it
    assert find_data_root() == DATA_ROOT.resolve()
    # nothing is looked up relative to the installed package: elsewhere, nothing is found
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        find_data_root()


@requires_data
def test_env_var_points_to_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_campaign(tmp_path, "NET")
    monkeypatch.setenv(ENV_VAR, str(root))
    campaign = load_campaign("network")  # the workload name works too
    assert campaign.name == "NET" and campaign.source == (root / "NET").resolve()
    assert len(campaign) == ROWS["NET"]


@requires_data
def test_missing_campaign_folder_or_file(tmp_path: Path) -> None:
    root = copy_campaign(tmp_path, "NET")
    error = load_error(root, "STO")
    assert "STO" in str(error)
    assert_explains_origin(error)
    (root / "NET" / "LCS_with_VMM.tsv").unlink()
    error = load_error(root, "NET")
    assert error.path == root / "NET" / "LCS_with_VMM.tsv"
    assert_explains_origin(error)


def test_unknown_campaign_name() -> None:
    with pytest.raises(DatasetError, match=r"DEPL.*NET.*STO.*found 'CPU'"):
        load_campaign("CPU", "/nonexistent")


# --------------------------------------------------------------------------------------------
# Broken copies
# --------------------------------------------------------------------------------------------


@requires_data
def test_truncated_labels_file(tmp_path: Path) -> None:
    root = copy_campaign(tmp_path)
    edit_lines(root / "NET" / "Failure_Labels.txt", lambda lines: lines[:500])
    error = load_error(root)
    assert error.path == root / "NET" / "Failure_Labels.txt"
    assert "Failure_Labels.txt" in str(error)
    assert "expected 561 labels" in str(error) and "found 500" in str(error)


@requires_data
def test_non_integer_cell(tmp_path: Path) -> None:
    root = copy_campaign(tmp_path)

    def corrupt(lines: list[str]) -> list[str]:
        cells = lines[5].split("\t")
        cells[2] = "3.5"
        lines[5] = "\t".join(cells)
        return lines

    edit_lines(root / "NET" / "SEQ.tsv", corrupt)
    error = load_error(root)
    assert (error.path, error.line, error.column) == (root / "NET" / "SEQ.tsv", 6, 3)
    assert "SEQ.tsv, line 6, column 3" in str(error) and "'3.5'" in str(error)


@requires_data
def test_negative_or_empty_cell_in_lcs(tmp_path: Path) -> None:
    root = copy_campaign(tmp_path)

    def corrupt(lines: list[str]) -> list[str]:
        cells = lines[-1].split("\t")
        cells[-1] = "-1"
        lines[-1] = "\t".join(cells)
        return lines

    edit_lines(root / "NET" / "LCS_with_VMM.tsv", corrupt)
    error = load_error(root)
    assert (error.path, error.line, error.column) == (
        root / "NET" / "LCS_with_VMM.tsv",
        ROWS["NET"] + 1,
        2 * COLUMNS["NET"],
    )


@requires_data
def test_header_with_wrong_length(tmp_path: Path) -> None:
    root = copy_campaign(tmp_path)

    def drop_name(lines: list[str]) -> list[str]:
        lines[0] = "\t".join(lines[0].split("\t")[:-1])
        return lines

    edit_lines(root / "NET" / "SEQ.tsv", drop_name)
    error = load_error(root)
    assert (error.path, error.line) == (root / "NET" / "SEQ.tsv", 1)
    assert "58 names" in str(error) and "59 cells" in str(error)


@requires_data
def test_lcs_header_must_repeat_the_seq_names(tmp_path: Path) -> None:
    root = copy_campaign(tmp_path)
    lcs = root / "NET" / "LCS_with_VMM.tsv"

    def rename(lines: list[str]) -> list[str]:
        names = lines[0].split("\t")
        names[COLUMNS["NET"] + 2] = "novaclient_GET_999"
        lines[0] = "\t".join(names)
        return lines

    edit_lines(lcs, rename)
    error = load_error(root)
    assert (error.path, error.line, error.column) == (lcs, 1, COLUMNS["NET"] + 3)
    assert "novaclient_GET_999" in str(error) and "missing" in str(error)

    def cut_both(lines: list[str]) -> list[str]:
        return ["\t".join(line.split("\t")[:-1]) for line in lines]

    edit_lines(lcs, cut_both)
    error = load_error(root)
    assert (error.path, error.line) == (lcs, 1)
    assert f"2 x {COLUMNS['NET']} = {2 * COLUMNS['NET']}" in str(error)


@requires_data
def test_ragged_row_and_row_count_mismatch(tmp_path: Path) -> None:
    root = copy_campaign(tmp_path)
    seq = root / "NET" / "SEQ.tsv"
    original = seq.read_text(encoding="utf-8")
    edit_lines(seq, lambda lines: [*lines[:10], lines[10].rsplit("\t", 1)[0], *lines[11:]])
    error = load_error(root)
    assert (error.path, error.line) == (seq, 11)
    assert f"expected {COLUMNS['NET']} tab-separated cells" in str(error)
    seq.write_text(original, encoding="utf-8")
    edit_lines(root / "NET" / "LCS_with_VMM.tsv", lambda lines: lines[:-3])
    error = load_error(root)
    assert error.path == root / "NET" / "LCS_with_VMM.tsv"
    assert f"expected {ROWS['NET']} data rows" in str(error)


@requires_data
def test_unknown_label_value(tmp_path: Path) -> None:
    root = copy_campaign(tmp_path)

    def relabel(lines: list[str]) -> list[str]:
        lines[2] = "9"
        return lines

    edit_lines(root / "NET" / "Failure_Labels.txt", relabel)
    error = load_error(root)
    assert (error.path, error.line) == (root / "NET" / "Failure_Labels.txt", 3)
    assert "found 9" in str(error) and "1, 2, 3, 4" in str(error)


@requires_data
def test_label_map(tmp_path: Path) -> None:
    root = copy_campaign(tmp_path, label_map=False)
    campaign = load_campaign("NET", root)  # an upstream clone has no label_map.json
    assert campaign.class_counts() == {cls: count for cls, count in LABELS["NET"].values()}
    (root / "label_map.json").write_text('{"NET": {"1": "disk_failure"}}', encoding="utf-8")
    error = load_error(root)
    assert error.path == root / "label_map.json" and "disk_failure" in str(error)
    (root / "label_map.json").write_text('{"DEPL": {"1": "no_failure"}}', encoding="utf-8")
    assert "'NET'" in str(load_error(root))
    (root / "label_map.json").write_text("{not json", encoding="utf-8")
    assert load_error(root).line == 1


def test_campaign_names_are_the_simulators_workload_aliases() -> None:
    for campaign, profile in PROFILE_ALIASES.items():
        assert campaign_name(campaign.lower()) == campaign_name(f" {profile.upper()} ") == campaign
        assert resolve_profile(campaign) == CAMPAIGN_WORKLOADS[campaign] == profile
