import pytest

from siammask_edu import data_root
from siammask_edu.paths import davis_sequence


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
