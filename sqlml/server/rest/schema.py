"""Request and response models of the REST endpoint (sqlml/rest.py).

FastAPI derives the OpenAPI document from these classes, so what /openapi.json promises is what
the endpoints validate and return.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# A label keeps its SQL type: BOOLEAN labels are JSON booleans, integer labels numbers, text
# labels strings, regression predictions numbers.
Label = bool | int | float | str | None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"rows": [{"tenure_months": 3, "plan": "basic", "monthly_charges": 70.5,
                   "autopay": False}]},
        {"columns": {"tenure_months": [3, 40], "plan": ["basic", "premium"]}, "version": 1},
    ]})

    rows: list[dict[str, Any]] | None = Field(
        None, description="One object per row, keyed by feature column. Extra keys are ignored; "
                          "an absent key or null is a NULL, which the stored imputer fills.")
    columns: dict[str, list[Any]] | None = Field(
        None, description="Column arrays of equal length, keyed by feature column. Give either "
                          "rows or columns.")
    version: int | None = Field(
        None, ge=1, description="Score with this stored version; the active one when absent.")


class PredictResponse(BaseModel):
    model: str
    version: int
    function: str = Field(description="The generated SQL function that gives the same answers.")
    problem_type: str
    predictions: list[Label] = Field(
        description="One label per row (the predicted value for regression), in request order.")
    probabilities: list[float] | list[dict[str, float]] | None = Field(
        None, description="Binary models: P(positive class) per row. Multiclass: per row, "
                          "every class label with its probability. Absent for regression.")
    threshold: float | None = Field(
        None, description="Binary models: the stored decision threshold on P(positive).")


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user": 42, "k": 5, "exclude_seen": True},
        {"users": [1, 2, 3], "k": 3},
    ]})

    user: Any = Field(None, description="One user id (the type of the training user column).")
    users: list[Any] | None = Field(None, description="Several user ids; give user or users.")
    k: int = Field(10, description="Number of items per user.")
    exclude_seen: bool = Field(True, description="Leave out items the user already rated.")
    version: int | None = Field(None, ge=1)


class Recommendation(BaseModel):
    rank: int
    item: Any = Field(description="The item id, in the type of the training item column.")
    score: float
    source: str = Field(description="'personalized', or 'popular' for an unknown user.")
    reason: str | None


class UserRecommendations(BaseModel):
    user: Any
    items: list[Recommendation]


class RecommendResponse(BaseModel):
    model: str
    version: int
    function: str
    results: list[UserRecommendations] = Field(description="One entry per user, request order.")


class ModelSummary(BaseModel):
    """One row of ``FROM ml_models()``."""

    name: str
    version: int
    state: str | None
    problem_type: str | None
    model_type: str | None
    target: str | None
    function: str | None
    objective: str | None
    metrics: dict[str, Any] | None
    threshold: float | None
    training_rows: int | None
    created_at: datetime | None
    training_seconds: float | None
    versions: int


class ModelList(BaseModel):
    models: list[ModelSummary]


class FeatureInfo(BaseModel):
    name: str
    type: str = Field(description="DuckDB type at training; request values are cast to it.")
    kind: str


class ModelDetail(BaseModel):
    model: str
    version: int
    problem_type: str
    function: str
    properties: dict[str, str | None] = Field(
        description="FROM ml_show_model(name): every (property, value) row.")
    features: list[FeatureInfo] = Field(
        description="The columns a predict request needs (recommenders: user and item ids).")


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
