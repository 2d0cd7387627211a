"""The command line's data layer: built-in datasets, CSV and NPZ tables, standardisation (host NumPy)."""

import sys

import numpy as np
import pytest

from anynet import data as D


def write(path, text: str, encoding: str = "utf-8"):
    path.write_text(text, encoding=encoding)
    return path


# --------------------------------------------------------------------------- built-in datasets


@pytest.mark.parametrize(
    ("name", "shape", "classes"), [("xor", (4, 2), 2), ("moons", (500, 2), 2), ("spirals", (600, 2), 3)]
)
def test_builtins_have_their_documented_shape(name, shape, classes):
    table = D.load(name, seed=0)
    assert table.X.shape == shape
    assert table.X.dtype == np.float64
    assert np.unique(table.t).size == classes
    assert len(table.features) == shape[1]
    assert np.isfinite(table.X).all()


def test_generated_datasets_follow_the_seed():
    a, b, c = D.load("moons", seed=3), D.load("moons", seed=3), D.load("moons", seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.t, b.t)
    assert not np.allclose(a.X, c.X)
    assert np.bincount(D.load("spirals", seed=1).t).tolist() == [200, 200, 200]


def test_xor_is_the_seeds_truth_table():
    table = D.load("xor")
    np.testing.assert_array_equal(table.t, np.logical_xor(table.X[:, 0], table.X[:, 1]).astype(int))


def test_digits_comes_from_scikit_learn():
    pytest.importorskip("sklearn", reason="scikit-learn is a test dependency; this checks the bundled digits")
    table = D.load("digits")
    assert table.X.shape == (1797, 64)
    assert sorted(np.unique(table.t).tolist()) == list(range(10))
    assert table.features[0] == "pixel_0_0"


def test_digits_without_scikit_learn_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn...` raise ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(D.DataError, match="pip install scikit-learn"):
        D.load("digits")


def test_a_file_named_like_a_builtin_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "moons", "a,b\n1,x\n2,y\n")
    table = D.load("moons")
    assert table.n == 2
    assert table.t.tolist() == ["x", "y"]


# --------------------------------------------------------------------------- CSV


def test_csv_text_labels_and_the_last_column_as_default_target(tmp_path):
    path = write(tmp_path / "f.csv", "sepal,petal,species\n1.5,2,setosa\n3,4.25, virginica \n\n5,6,setosa\n")
    table = D.read_csv(path)
    assert table.features == ["sepal", "petal"]
    assert table.target == "species"
    np.testing.assert_array_equal(table.X, [[1.5, 2.0], [3.0, 4.25], [5.0, 6.0]])
    assert table.t.tolist() == ["setosa", "virginica", "setosa"]


def test_csv_target_by_name_numeric_labels_semicolons_and_bom(tmp_path):
    path = write(tmp_path / "f.csv", "\ufeffy;a;b\n1;0.5;7\n0;1.5;8\n2;2.5;9\n")
    table = D.read_csv(path, target="y")
    assert table.features == ["a", "b"]
    assert table.t.dtype.kind == "i"
    assert table.t.tolist() == [1, 0, 2]


def test_csv_quoted_fields_with_commas(tmp_path):
    path = write(tmp_path / "f.csv", 'x,"label, long"\n1,"a, b"\n2,c\n')
    table = D.read_csv(path)
    assert table.target == "label, long"
    assert table.t.tolist() == ["a, b", "c"]


def test_csv_without_target_for_new_rows(tmp_path):
    path = write(tmp_path / "new.csv", "b,a\n1,2\n3,4\n")
    table = D.load(str(path), target="label", need_target=False)
    assert table.t is None
    assert table.features == ["b", "a"]
    picked = D.select(table, ["a", "b"])
    np.testing.assert_array_equal(picked.X, [[2, 1], [4, 3]])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "is empty"),
        ("a,b\n", "no rows"),
        ("1,2\n3,4\n", r"first line of .* looks like a row of data \(1,2\), not column names"),
        # iris without its header: numbers and a label, read before as 149 rows with target 'setosa'
        ("5.1,3.5,1.4,0.2,setosa\n4.9,3.0,1.4,0.2,setosa\n", r"looks like a row of data \(5.1,3.5,1.4,0.2,setosa\)"),
        ("a,b,c\n1,2,x\n3,4\n", "line 3 has 2 fields but the header has 3"),
        ("a,b,c\n1,2,x\n3,oops,y\n", r"column 'b' .* holds text \('oops' on line 3\)"),
        ("a,b,c\n1,,x\n3,4,y\n", "column 'b' .* 1 missing or infinite value.*line 2"),
        ("a,b,c\n1,inf,x\n", "column 'b' .* missing or infinite"),
        ("a,a,c\n1,2,x\n", "two columns named 'a'"),
        ("a,,c\n1,2,x\n", "column 2 .* has no name"),
        ("a,b,c\n1,2,\n", "target column 'c' .* is empty on line 2"),
        ("c\nx\n", "only the target column"),
    ],
)
def test_csv_problems_are_named(tmp_path, text, match):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(D.DataError, match=match):
        D.read_csv(path)


def test_a_header_with_one_name_among_numbers_is_still_a_header(tmp_path):
    # names that are numbers, but a target column whose values are numbers too: a header row
    table = D.read_csv(write(tmp_path / "years.csv", "2019,2020,label\n1,2,0\n3,4,1\n"))
    assert table.features == ["2019", "2020"]
    assert table.n == 2


def test_csv_unknown_target_suggests_the_close_name(tmp_path):
    path = write(tmp_path / "f.csv", "a,Species\n1,x\n")
    with pytest.raises(D.DataError, match=r"no column 'species' \(did you mean 'Species'\?\)"):
        D.read_csv(path, target="species")


def test_binary_and_non_utf8_files_are_refused(tmp_path):
    with pytest.raises(D.DataError, match="not UTF-8"):
        D.read_csv(write(tmp_path / "latin.csv", "a,b\n1,caf\xe9\n", encoding="latin-1"))
    (tmp_path / "bin.csv").write_bytes(b"a,b\n\x00\x01\x02")
    with pytest.raises(D.DataError, match="binary"):
        D.read_csv(tmp_path / "bin.csv")


def test_missing_file_and_unknown_dataset(tmp_path):
    with pytest.raises(D.DataError, match=r"no such file$"):
        D.load(str(tmp_path / "none.csv"))
    with pytest.raises(D.DataError, match="built-in datasets are xor, digits, moons, spirals"):
        D.load("mnist")


# --------------------------------------------------------------------------- NPZ


def test_npz_with_X_and_y(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    np.savez(tmp_path / "d.npz", X=X, y=np.array(["a", "b", "a", "b"]))
    table = D.load(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(table.X, X)
    assert table.features == ["x1", "x2", "x3"]
    assert table.target == "y"
    assert table.t.tolist() == ["a", "b", "a", "b"]


def test_npz_one_array_per_column(tmp_path):
    np.savez(tmp_path / "d.npz", h=np.array([1.0, 2.0]), w=np.array([3, 4]), kind=np.array([0, 1]))
    table = D.load(str(tmp_path / "d.npz"))
    assert table.features == ["h", "w"]
    assert table.target == "kind"
    np.testing.assert_array_equal(table.X, [[1, 3], [2, 4]])


def test_npz_problems_are_named(tmp_path):
    np.savez(tmp_path / "obj.npz", X=np.zeros((2, 2)), y=np.array(["a", None], dtype=object))
    with pytest.raises(D.DataError, match="string array"):
        D.load(str(tmp_path / "obj.npz"))
    np.savez(tmp_path / "ragged.npz", a=np.zeros(3), b=np.zeros(2))
    with pytest.raises(D.DataError, match="one value per row"):
        D.load(str(tmp_path / "ragged.npz"))
    np.savez(tmp_path / "model.npz", anynet_config=np.asarray("{}"), W0=np.zeros((2, 2)))
    with pytest.raises(D.DataError, match="is an anynet model, not data"):
        D.load(str(tmp_path / "model.npz"))
    np.savez(tmp_path / "nolabel.npz", X=np.zeros((2, 2)))
    with pytest.raises(D.DataError, match="no targets"):
        D.load(str(tmp_path / "nolabel.npz"))


# --------------------------------------------------------------------------- targets, scaling, columns


def test_is_categorical():
    assert D.is_categorical(np.array(["a", "b"]))
    assert D.is_categorical(np.array([0, 1, 2, 1]))
    assert D.is_categorical(np.array([0.0, 1.0]))
    assert not D.is_categorical(np.array([0.5, 1.0]))
    assert not D.is_categorical(np.arange(D.MAX_NUMERIC_CLASSES + 1))


def test_standardizer_round_trip_and_constant_columns():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    mean, std = D.standardizer(X)
    assert mean == [3.0, 5.0]
    assert std[1] == 1.0
    Z = D.standardize(X, mean, std)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z[:, 0].std(), 1.0)
    np.testing.assert_array_equal(Z[:, 1], 0.0)


def test_select_names_the_missing_columns(tmp_path):
    table = D.read_csv(write(tmp_path / "f.csv", "a,b,t\n1,2,x\n"))
    with pytest.raises(D.DataError, match=r"lacks the column.* 'c'"):
        D.select(table, ["a", "c"])
