"""Loading click files: formats, stable ordering, one clear error per kind of bad input."""

import pytest

from sessionrec.model.data import FORMATS, DataError, data_dir, load_sessions, read_clicks


def write(tmp_path, text, name="clicks.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_loads_the_electronics_files():
    train = load_sessions(data_dir() / "ecommerce" / "train_data.csv")
    assert len(train) == 41059 and train.session_id.nunique() == 21585
    assert list(train.columns) == ["session_id", "item_id", "ts"]
    assert train.item_id.map(type).eq(str).all()


def test_gru4rec_tab_format_and_stable_sort(tmp_path):
    path = write(tmp_path, "SessionId\tItemId\tTime\n2\t7\t5\n1\t8\t3\n2\t9\t5\n1\t6\t1\n")
    frame = load_sessions(path, FORMATS["gru4rec"])
    assert frame[["session_id", "item_id"]].values.tolist() == [["1", "6"], ["1", "8"], ["2", "7"], ["2", "9"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("event_time,product_id,user_session\n", "no rows"),
        ("event_time,product_id\n1,2\n", "missing column(s) user_session"),
        ("event_time,product_id,user_session\nnoon,2,s\n", "is not a number on data row 1"),
        ("event_time\tproduct_id\tuser_session\n1\t2\ts\n", "separated by tabs"),
        ("event_time,product_id,user_session\n1,,s\n", "'product_id' is empty on data row 1"),
    ],
)
def test_bad_input_names_the_file_and_the_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_clicks(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_clicks(tmp_path / "nope.csv")
