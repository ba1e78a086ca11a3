"""Loading click files: formats, stable ordering, one clear error per kind of bad input."""

import pytest

from sessionrec.model.data import FORMATS, DataError, data_dir, load_sessions, read_clicks, write_clicks
from sessionrec.model.formats import Columns


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
        ("event_time\tproduct_id\tuser_session\n1\t2\ts\n", "separated by tabs; pass --sep '\\t' or the matching --format"),
        ("event_time,product_id,user_session\n2019-10-01 00:00:00 UTC,2,s\n", "not a number on data row 1 ('2019-10-01 00:00:00 UTC'); "
         "for date-time text pass --time-format datetime"),
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


EXPORT = """event_time,event_type,product_id,category_id,price,user_id,user_session
2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,35.79,541312140,72d76fde
2019-10-01 00:00:05 UTC,cart,3900821,2053013552326770905,33.20,554748717,72d76fde
2019-10-01 02:00:10+02:00,view,17200506,2053013559792632471,543.10,519107250,9333dfbd
2019-10-01 00:01:00,purchase,44600062,2103807459595387724,35.79,541312140,72d76fde
"""


def test_rees46_export_parses_datetimes_and_keeps_only_the_chosen_event_types(tmp_path):
    path = write(tmp_path, EXPORT)
    every = read_clicks(path, FORMATS["rees46"])
    assert every.ts.tolist() == [1569888000.0, 1569888005.0, 1569888010.0, 1569888060.0]  # a zone is honoured; none means UTC
    views = read_clicks(path, FORMATS["rees46"].overridden(event_types=("view",)))
    assert views.item_id.tolist() == ["44600062", "17200506"] and views.index.tolist() == [0, 1]
    assert read_clicks(path, FORMATS["rees46"].overridden(event_types=("view", "cart"))).item_id.nunique() == 3


def test_errors_after_the_event_filter_name_the_file_row(tmp_path):
    path = write(tmp_path, EXPORT.replace("2019-10-01 02:00:10+02:00", "yesterday"))
    with pytest.raises(DataError, match=r"'event_time' is not a date-time on data row 3 \('yesterday'\)"):
        read_clicks(path, FORMATS["rees46"].overridden(event_types=("view",)))


@pytest.mark.parametrize(
    ("text", "columns", "message"),
    [
        (EXPORT, FORMATS["rees46"].overridden(event_types=("remove",)), "no rows with event_type 'remove'; found 'cart', 'purchase', 'view'"),
        ("SessionId\tItemId\tTime\n1\t2\t3\n", FORMATS["gru4rec"].overridden(event_types=("view",)),
         "missing column(s) event_type; found SessionId, ItemId, Time (--event-type filters on it)"),
        ("SessionId\tItemId\tTime\n1\t2\t1569888000\n", FORMATS["gru4rec"].overridden(time_format="datetime"),
         "not a date-time on data row 1 ('1569888000'); for unix seconds pass --time-format unix"),
    ],
)
def test_bad_input_for_a_format_says_which_option_fits(tmp_path, text, columns, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_clicks(path, columns)
    assert message in str(err.value)


def test_column_overrides_replace_only_what_is_given(tmp_path):
    columns = FORMATS["gru4rec"].overridden(session="visit", time=None, sep=";", event_types=())
    assert columns == Columns("visit", "ItemId", "Time", ";")
    path = write(tmp_path, "visit;ItemId;Time;other\nv;7;5;x\n")
    assert read_clicks(path, columns).values.tolist() == [["v", "7", 5.0]]
    with pytest.raises(DataError, match="one character"):
        FORMATS["gru4rec"].overridden(sep="||")
    with pytest.raises(DataError, match="unknown time format"):
        FORMATS["gru4rec"].overridden(time_format="iso")


def test_written_clicks_read_back_in_the_default_format(tmp_path):
    frame = read_clicks(write(tmp_path, EXPORT), FORMATS["rees46"])
    write_clicks(frame, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text().splitlines()[:2] == ["event_time,product_id,user_session", "1569888000,44600062,72d76fde"]
    assert read_clicks(tmp_path / "out.csv").equals(frame)
