import pytest

from siammask_edu import data_root
from siammask_edu.paths import (
    davis_sequence,
    fixtures_dir,
    have_davis,
    have_fixtures,
    have_vot,
)


def test_explicit_root_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMMASK_EDU_DATA", "/nonexistent/elsewhere")
    assert data_root(tmp_path) == tmp_path.resolve()


def test_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMMASK_EDU_DATA", str(tmp_path))
    assert data_root() == tmp_path.resolve()
    monkeypatch.setenv("SIAMMASK_EDU_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="SIAMMASK_EDU_DATA"):
        data_root()


def test_missing_explicit_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data_root(tmp_path / "nope")


def test_sibling_shared_data_found_from_cwd(tmp_path, monkeypatch):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    work = tmp_path / "checkout" / "book"
    work.mkdir(parents=True)
    monkeypatch.delenv("SIAMMASK_EDU_DATA", raising=False)
    monkeypatch.chdir(work)
    assert data_root() == (tmp_path / "shared" / "data").resolve()


def test_davis_sequence_missing(tmp_path):
    (tmp_path / "davis2016").mkdir()
    with pytest.raises(FileNotFoundError, match="nosuchseq"):
        davis_sequence("nosuchseq", root=tmp_path)


def test_empty_explicit_roots_mean_no_data(tmp_path, monkeypatch):
    # a learner's clone, or the learner-mode book run: both roots exist and are empty
    (tmp_path / "d").mkdir()
    (tmp_path / "r").mkdir()
    monkeypatch.setenv("SIAMMASK_EDU_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("SIAMMASK_EDU_REFERENCE", str(tmp_path / "r"))
    assert data_root() == (tmp_path / "d").resolve()  # not an error
    assert not have_davis() and not have_vot() and not have_fixtures()
    with pytest.raises(FileNotFoundError, match="fixtures"):
        fixtures_dir()


def test_have_functions_never_raise_without_a_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMMASK_EDU_DATA", str(tmp_path / "nope"))
    monkeypatch.setenv("SIAMMASK_EDU_REFERENCE", str(tmp_path / "nope"))
    assert (have_davis("car-shadow"), have_vot("bag"), have_fixtures()) == (False,) * 3


def test_have_functions_see_what_is_there(tmp_path, monkeypatch):
    monkeypatch.delenv("SIAMMASK_EDU_REFERENCE", raising=False)  # else it wins over root=
    root = tmp_path / "data"  # the fixtures sit beside it, in tmp_path / "reference"
    for sub in ("JPEGImages", "Annotations"):
        (root / "davis2016" / sub / "480p" / "cat").mkdir(parents=True)
    (root / "vot" / "bag").mkdir(parents=True)
    assert have_davis("cat", root=root) and not have_davis("cat", "dog", root=root)
    assert not have_davis("cat", resolution="240p", root=root)
    assert not have_vot("bag", root=root)  # no groundtruth.txt yet
    (root / "vot" / "bag" / "groundtruth.txt").write_text("1,2,3,4\n")
    assert have_vot("bag", root=root)
    assert not have_fixtures(root=root)
    (tmp_path / "reference" / "fixtures").mkdir(parents=True)
    (tmp_path / "reference" / "fixtures" / "a.npz").write_bytes(b"")
    assert have_fixtures(root=root) and have_fixtures("a.npz", root=root)
    assert not have_fixtures("a.npz", "b.npz", root=root)


def test_missing_reference_names_the_reference_not_the_data(monkeypatch):
    """A clone without ../shared: the fixtures' skip reason says where *they* are looked
    for ($SIAMMASK_EDU_REFERENCE, shared/reference), not how to set a data root."""
    import siammask_edu.paths as paths

    monkeypatch.delenv("SIAMMASK_EDU_DATA", raising=False)
    monkeypatch.delenv("SIAMMASK_EDU_REFERENCE", raising=False)
    monkeypatch.setattr(paths, "_candidates", lambda: [])
    with pytest.raises(FileNotFoundError) as exc:
        paths.fixtures_dir()
    msg = str(exc.value)
    assert "$SIAMMASK_EDU_REFERENCE" in msg and "shared/reference" in msg
    assert "root=" not in msg and "SIAMMASK_EDU_DATA" not in msg
