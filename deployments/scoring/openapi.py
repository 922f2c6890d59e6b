"""The OpenAPI 3 document of a service, generated from its model's signature."""

from __future__ import annotations

from typing import Any

# MLflow data types → JSON Schema.
_TYPES: dict[str, dict] = {
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "float"},
    "double": {"type": "number", "format": "double"},
    "string": {"type": "string"},
    "binary": {"type": "string", "format": "byte"},
    "datetime": {"type": "string", "format": "date-time"},
}
_NUMPY: dict[str, dict] = {
    "b": {"type": "boolean"},
    "i": {"type": "integer"},
    "u": {"type": "integer"},
    "f": {"type": "number"},
    "U": {"type": "string"},
    "S": {"type": "string", "format": "byte"},
    "O": {"type": "string"},
    "M": {"type": "string", "format": "date-time"},
}


def _value_schema(spec: Any) -> dict:
    """The JSON Schema of one column or tensor spec."""
    dtype = getattr(spec, "type", None)
    if hasattr(spec, "shape") and hasattr(dtype, "kind"):  # a TensorSpec: numpy dtype + shape
        inner = dict(_NUMPY.get(dtype.kind, {}))
        for _ in range(max(0, len(spec.shape) - 1)):
            inner = {"type": "array", "items": inner}
        return inner
    name = getattr(dtype, "name", None)
    if name in _TYPES:
        return dict(_TYPES[name])
    to_dict = getattr(dtype, "to_dict", None)
    if to_dict is not None:  # Array / Object / Map types: described, not expanded
        return {"description": str(dtype)[:200]}
    return {}


def _input_schemas(schema: Any) -> tuple[dict, dict]:
    """(a row as an array, a row as a record) for the input schema (or anything goes)."""
    if schema is None:
        return {"type": "array", "items": {}}, {"type": "object"}
    specs = list(schema.inputs)
    if schema.has_input_names() and not schema.is_tensor_spec():
        names = [s.name for s in specs]
        row = {
            "type": "array",
            "items": {},
            "minItems": len(specs),
            "maxItems": len(specs),
            "description": "values in the order: " + ", ".join(names),
            "prefixItems": [_value_schema(s) for s in specs],
        }
        record = {
            "type": "object",
            "properties": {s.name: _value_schema(s) for s in specs},
            "required": [s.name for s in specs if getattr(s, "required", True)],
        }
        return row, record
    if len(specs) == 1:
        value = _value_schema(specs[0])
        return (value if value.get("type") == "array" else {"type": "array", "items": value}), {
            "type": "object"
        }
    return {"type": "array", "items": {}}, {"type": "object"}


def _output_schema(schema: Any) -> dict:
    if schema is None:
        return {"type": "array", "items": {}}
    specs = list(schema.inputs)
    if schema.has_input_names() and not schema.is_tensor_spec() and len(specs) > 1:
        return {
            "type": "array",
            "items": {"type": "object", "properties": {s.name: _value_schema(s) for s in specs}},
        }
    if len(specs) == 1:
        return {"type": "array", "items": _value_schema(specs[0])}
    return {"type": "array", "items": {}}


def build_document(
    *,
    service: str,
    input_schema: Any,
    output_schema: Any,
    example: dict | None,
    auth_enabled: bool,
    version: str = "1.0",
) -> dict:
    """The document: POST /score with every accepted request shape, GET /health."""
    row, record = _input_schemas(input_schema)
    rows = {"type": "array", "items": row, "minItems": 1}
    records = {"type": "array", "items": record, "minItems": 1}
    columns = {"type": "array", "items": {"type": "string"}}
    request = {
        "oneOf": [
            {
                "title": "Rows (the reference service's format)",
                "type": "object",
                "required": ["data"],
                "properties": {"data": rows},
            },
            {
                "title": "MLflow dataframe_split",
                "type": "object",
                "required": ["dataframe_split"],
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "columns": columns,
                            "data": rows,
                            "index": {"type": "array"},
                        },
                    },
                    "params": {"type": "object"},
                },
            },
            {
                "title": "MLflow dataframe_records",
                "type": "object",
                "required": ["dataframe_records"],
                "properties": {"dataframe_records": records, "params": {"type": "object"}},
            },
            {
                "title": "MLflow instances",
                "type": "object",
                "required": ["instances"],
                "properties": {"instances": {"type": "array"}, "params": {"type": "object"}},
            },
            {
                "title": "MLflow inputs",
                "type": "object",
                "required": ["inputs"],
                "properties": {"inputs": {}, "params": {"type": "object"}},
            },
        ]
    }
    outputs = _output_schema(output_schema)
    response = {
        "oneOf": [
            {"title": 'Predictions (for {"data": ...})', **outputs},
            {
                "title": "Predictions (for the MLflow formats)",
                "type": "object",
                "required": ["predictions"],
                "properties": {"predictions": outputs},
            },
        ]
    }
    error = {
        "type": "object",
        "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
    }
    body: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/ScoringRequest"}}
    if example is not None:
        body["example"] = example
    score: dict[str, Any] = {
        "summary": "Score rows with the model",
        "operationId": "score",
        "requestBody": {"required": True, "content": {"application/json": body}},
        "responses": {
            "200": {
                "description": "The model's predictions",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ScoringResponse"}}
                },
            },
            "400": {"description": "The input does not fit the model's signature", **_json(error)},
            "415": {"description": "The body is not JSON (or CSV)", **_json(error)},
        },
    }
    components: dict[str, Any] = {
        "schemas": {"ScoringRequest": request, "ScoringResponse": response, "Error": error}
    }
    if auth_enabled:
        score["security"] = [{"ServiceKey": []}]
        unauthorized = {"description": "No key or token, or a wrong one", **_json(error)}
        score["responses"]["401"] = unauthorized
        components["securitySchemes"] = {
            "ServiceKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "A service key (primary or secondary) or a short-lived token.",
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{service or 'model'} scoring service", "version": version},
        "paths": {
            "/score": {"post": score},
            "/health": {
                "get": {
                    "summary": "Whether the model is loaded",
                    "operationId": "health",
                    "responses": {
                        "200": {"description": "Loaded", **_json({"type": "object"})},
                        "503": {"description": "Still loading", **_json({"type": "object"})},
                    },
                }
            },
        },
        "components": components,
    }


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def model_example(model_dir: str, metadata: Any) -> dict | None:
    """The model's logged input example as a `{"data": [[...]]}` request, if it has one."""
    try:
        example = metadata.load_input_example(model_dir)
    except Exception:
        return None
    if example is None:
        return None
    if hasattr(example, "to_numpy"):  # a DataFrame
        return {"data": _jsonable(example.head(5).to_numpy().tolist())}
    if hasattr(example, "tolist"):
        return {"data": _jsonable(example[:5].tolist())}
    if isinstance(example, list):
        return {"data": _jsonable(example[:5])}
    if isinstance(example, dict):
        return {"inputs": _jsonable(example)}
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)
