"""Request bodies → the model's input, and short messages when they do not fit.

Accepted JSON bodies: the reference service's `{"data": [[...], ...]}` (rows; the columns
are the signature's input names) and MLflow's `dataframe_split`, `dataframe_records`,
`instances` and `inputs` (parsed with mlflow's own scoring-server helpers, so a body that
`mlflow models serve` takes is taken here the same way); `text/csv` as mlflow does too.
Messages are short: they name what is wrong (a key, the first offending column and its
expected type) and never echo the body or the whole schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

MAX_MESSAGE_CHARS = 200
FORMATS = ("data", "dataframe_split", "dataframe_records", "instances", "inputs")

try:
    import orjson

    loads: Callable[[bytes], Any] = orjson.loads
    JSONDecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson ships with the studio
    import json

    loads = json.loads
    JSONDecodeError = ValueError


class BadInput(Exception):
    """The request cannot be scored as sent: 400 (or `status`) with a short message."""

    def __init__(self, message: str, status: int = 400, code: str = "BAD_REQUEST"):
        super().__init__(shorten(message))
        self.message = shorten(message)
        self.status = status
        self.code = code


def shorten(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    first = " ".join(str(message).split())
    return first if len(first) <= limit else first[: limit - 1] + "…"


@dataclasses.dataclass
class Parsed:
    data: Any  # what model.predict gets
    params: dict | None
    wrapped: bool  # True: answer {"predictions": ...} (MLflow formats); False: a plain list
    rows: Callable[[int], dict | None]  # renders a telemetry sample of the inputs, later
    # True when `data` is a DataFrame built here exactly as the signature says (its columns
    # in order, each of the signature's float dtype, no missing value): mlflow's schema
    # enforcement would hand it back unchanged.
    conforming: bool = False


class InputParser:
    """Knows the model's input schema once, parses each request against it."""

    def __init__(self, input_schema: Any):
        self.schema = input_schema
        self.names: list[str] | None = None
        if input_schema is not None and input_schema.has_input_names():
            self.names = input_schema.input_names()
        self.tensor = input_schema is not None and input_schema.is_tensor_spec()
        # The fast path: a signature of required float columns (the common tabular
        # model's). Rows of numbers become one float array → DataFrame, instead of
        # mlflow's column-by-column casts; anything else takes mlflow's path.
        self.float_dtype: Any = None
        if self.names is not None and not self.tensor:
            kinds = {getattr(spec.type, "name", None) for spec in input_schema.inputs}
            required = all(getattr(spec, "required", True) for spec in input_schema.inputs)
            if required and len(kinds) == 1 and kinds <= {"double", "float"}:
                import numpy as np

                self.float_dtype = np.float64 if kinds == {"double"} else np.float32

    def parse_json(self, body: bytes) -> Parsed:
        if not body:
            raise BadInput('The request body is empty; send a JSON object like {"data": [[...]]}.')
        try:
            decoded = loads(body)
        except (JSONDecodeError, UnicodeDecodeError, ValueError):
            raise BadInput("The request body is not valid JSON.") from None
        if not isinstance(decoded, dict):
            raise BadInput(
                "The request body must be a JSON object with one of the keys: "
                + ", ".join(FORMATS)
                + "."
            )
        if "data" in decoded and not any(k in decoded for k in FORMATS[1:]):
            return self._reference(decoded)
        return self._mlflow(decoded)

    def parse_csv(self, body: bytes) -> Parsed:
        from io import StringIO

        from mlflow.pyfunc.scoring_server import parse_csv_input

        try:
            frame = parse_csv_input(StringIO(body.decode("utf-8")), schema=self.schema)
        except UnicodeDecodeError:
            raise BadInput("The CSV body is not UTF-8.") from None
        except Exception as exc:
            kind = type(exc).__name__
            raise BadInput(f"The CSV body could not be read as a table ({kind}).") from None
        return Parsed(frame, None, True, _frame_rows(frame))

    def _fast_frame(self, columns: Any, rows: Any) -> Any:
        """A conforming DataFrame from rows of numbers, or None (then mlflow's path)."""
        if self.float_dtype is None or (columns is not None and columns != self.names):
            return None
        if not isinstance(rows, list) or not rows or not isinstance(rows[0], list):
            return None
        import numpy as np
        import pandas as pd

        try:
            array = np.array(rows, dtype=self.float_dtype)
        except (ValueError, TypeError):
            return None
        if array.ndim != 2 or array.shape[1] != len(self.names) or np.isnan(array).any():
            return None  # missing values: mlflow decides what a required column allows
        return pd.DataFrame(array, columns=self.names, copy=False)

    def _reference(self, decoded: dict) -> Parsed:
        """`{"data": [[...], ...]}` (or a list of records, or one row)."""
        rows = decoded["data"]
        if isinstance(rows, dict):  # a column → values mapping
            rows = _records_from_columns(rows)
        if not isinstance(rows, list) or not rows:
            raise BadInput("'data' must be a non-empty list of rows.")
        if not isinstance(rows[0], list | dict):  # one row given flat
            rows = [rows]
        fast = self._fast_frame(None, rows)
        if fast is not None:
            return Parsed(fast, None, False, _list_rows(self.names, rows), conforming=True)
        if self.tensor or (self.names is None and self.schema is not None):
            import numpy as np

            try:
                array = np.asarray(rows)
            except ValueError:
                raise BadInput("'data' rows must all have the same length.") from None
            return Parsed(array, None, False, _list_rows(None, rows))
        import pandas as pd

        try:
            if isinstance(rows[0], dict):
                frame = pd.DataFrame.from_records(rows)
            else:
                width = len(rows[0])
                if self.names is not None and width != len(self.names):
                    raise BadInput(
                        f"Each row of 'data' must have {len(self.names)} values (the model's "
                        f"inputs: {_names_preview(self.names)}); the first row has {width}."
                    )
                frame = pd.DataFrame(rows, columns=self.names)
        except BadInput:
            raise
        except Exception:
            raise BadInput("'data' rows must all have the same length.") from None
        if self.schema is not None:
            from mlflow.utils.proto_json_utils import cast_df_types_according_to_schema

            try:
                frame = cast_df_types_according_to_schema(frame, self.schema)
            except Exception as exc:
                raise BadInput(schema_message(frame, self.schema, exc)) from None
        return Parsed(frame, None, False, _frame_rows(frame))

    def _mlflow(self, decoded: dict) -> Parsed:
        from mlflow.pyfunc.scoring_server import SERVING_PARAMS_KEY

        keys = [k for k in FORMATS[1:] if k in decoded]
        if len(keys) != 1:
            raise BadInput(
                "The JSON object must have exactly one of the keys: " + ", ".join(FORMATS) + "."
                if not keys
                else "Send only one of the keys: " + ", ".join(keys) + "."
            )
        key = keys[0]
        value = decoded[key]
        params = decoded.get(SERVING_PARAMS_KEY)
        if params is not None and not isinstance(params, dict):
            raise BadInput("'params' must be a JSON object.")
        if key == "dataframe_split" and isinstance(value, dict) and set(value) <= SPLIT_KEYS:
            columns, rows = value.get("columns"), value.get("data")
            if "index" not in value and params is None:
                fast = self._fast_frame(columns, rows)
                if fast is not None:
                    return Parsed(fast, None, True, _list_rows(self.names, rows), conforming=True)
            sample = _list_rows(columns, rows)
        elif isinstance(value, list) and value and isinstance(value[0], dict):  # records
            sample = _record_rows(value)
        elif isinstance(value, list):
            sample = _list_rows(None, value)
        else:
            sample = _nothing
        from mlflow.pyfunc.scoring_server import infer_and_parse_data

        try:
            data = infer_and_parse_data({key: value}, self.schema)
        except Exception as exc:
            raise BadInput(_parse_message(key, exc)) from None
        return Parsed(data, params, True, sample)


SPLIT_KEYS = frozenset({"columns", "data", "index"})


def _parse_message(key: str, exc: Exception) -> str:
    """mlflow's parse errors name the format's rule; keep that part, never the input."""
    text = getattr(exc, "message", None) or str(exc)
    text = text.split("Error:")[0].split("Got ")[0].split("Received")[0]
    return f"'{key}' could not be read: {shorten(text, 150).rstrip('. ')}."


def schema_message(data: Any, schema: Any, exc: BaseException | None = None) -> str:
    """A short message for input that does not fit the signature: the first missing or
    mistyped column and what it expects; else the first line of mlflow's reason."""
    if schema is not None and hasattr(data, "columns") and schema.has_input_names():
        missing = [
            spec for spec in schema.inputs if spec.name not in data.columns and spec.required
        ]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            return f"Missing input column '{missing[0].name}' ({_type_name(missing[0])}){more}."
        if not schema.is_tensor_spec():
            from mlflow.models.utils import _enforce_mlflow_datatype

            for spec in schema.inputs:
                if spec.name not in data.columns or not hasattr(spec.type, "to_numpy"):
                    continue
                try:
                    _enforce_mlflow_datatype(spec.name, data[spec.name], spec.type)
                except Exception:
                    actual = str(data[spec.name].dtype)
                    return (
                        f"Column '{spec.name}' expects {_type_name(spec)}; "
                        f"got values of type {actual}."
                    )
    inner = exc
    # pyfunc wraps the reason in a message that repeats the data and the schema: take the
    # exception it was raised from.
    while inner is not None and "Failed to enforce schema" in str(getattr(inner, "message", inner)):
        inner = inner.__cause__ or inner.__context__
    text = str(getattr(inner, "message", inner)) if inner is not None else ""
    first = text.strip().split("\n")[0] or "the input does not match the model's signature"
    return "Input does not match the model signature: " + shorten(first, 140)


def _type_name(spec: Any) -> str:
    t = getattr(spec, "type", None)
    name = getattr(t, "name", None)
    if name:
        return name
    return str(t)[:40] if t is not None else "tensor"


def _names_preview(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _records_from_columns(columns: dict) -> list[dict]:
    values = list(columns.values())
    if not values or not all(isinstance(v, list) for v in values):
        return [columns]
    return [dict(zip(columns, row, strict=False)) for row in zip(*values, strict=False)]


# --- telemetry samples: rendered in the shipper thread, from the decoded JSON ----------
# (plain lists: slicing them costs nothing on the request path, and the shipper does not
# touch pandas)


def _list_rows(columns: Any, rows: Any) -> Callable[[int], dict | None]:
    def render(max_rows: int) -> dict | None:
        if not isinstance(rows, list):
            return None
        head = [r if isinstance(r, list) else [r] for r in rows[:max_rows]]
        names = [str(c) for c in columns] if isinstance(columns, list) else None
        return {"columns": names, "data": head}

    return render


def _record_rows(records: list) -> Callable[[int], dict | None]:
    def render(max_rows: int) -> dict | None:
        head = [r for r in records[:max_rows] if isinstance(r, dict)]
        columns: list[str] = []
        for record in head:
            columns += [c for c in record if c not in columns]
        return {"columns": columns, "data": [[r.get(c) for c in columns] for r in head]}

    return render


def _frame_rows(frame: Any) -> Callable[[int], dict | None]:
    def render(max_rows: int) -> dict:
        head = frame.iloc[:max_rows]
        return {"columns": [str(c) for c in head.columns], "data": head.to_numpy().tolist()}

    return render


def _nothing(max_rows: int) -> None:
    return None
