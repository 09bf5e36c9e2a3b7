"""The request and response bodies: what /docs shows and what FastAPI validates.

The same shapes as the final lesson's (``Passenger`` and the answers), plus the
bodies of /ready and of the error answers, so that every status a client can get
is documented in the OpenAPI schema.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    RootModel,
)
from pydantic.json_schema import JsonDict, JsonSchemaValue
from pydantic_core import core_schema

MAX_BATCH_SIZE = 1_000
Outcome = Literal[0, 1]
Status = Literal["Survived", "Not Survived"]
SURVIVAL_STATUS: dict[int, Status] = {0: "Not Survived", 1: "Survived"}
# The passengers /docs shows (the first one alone for /predict_single).
EXAMPLES: list[JsonDict] = [
    {
        "Pclass": 3,
        "Sex": "male",
        "Age": 22.0,
        "SibSp": 1,
        "Parch": 0,
        "Fare": 7.25,
        "Embarked": "S",
    },
    {
        "Pclass": 1,
        "Sex": "female",
        "Age": 38.0,
        "SibSp": 1,
        "Parch": 0,
        "Fare": 71.2833,
        "Embarked": "C",
    },
    {
        "Pclass": 2,
        "Sex": "female",
        "Age": 4.0,
        "SibSp": 0,
        "Parch": 1,
        "Fare": 23.0,
        "Embarked": "S",
    },
]


class WholeNumberFirst:
    """Refuse JSON ``true`` and ``1.0`` as Pclass, with the error 7 would get.

    ``Literal[1, 2, 3]`` compares with ``==``, and in Python ``True == 1`` and
    ``1.0 == 1``. The lessons check that with a Python validator, one call per
    passenger; this core schema does it in pydantic's compiled core: a strict
    integer first (its error worded like the literal's), then the literal.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        whole_number = core_schema.custom_error_schema(
            core_schema.int_schema(strict=True),
            custom_error_type="literal_error",
            custom_error_context={"expected": "1, 2 or 3"},
        )
        return core_schema.chain_schema([whole_number, handler(source)])

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(schema["steps"][1])


WHOLE_NUMBER = WholeNumberFirst()


class Passenger(BaseModel):
    """One passenger, as the model needs it, with every field checked."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLES[0]]},
    )

    Pclass: Annotated[Literal[1, 2, 3], WHOLE_NUMBER] = Field(
        description="Ticket class: 1 = first, 2 = second, 3 = third."
    )
    Sex: Literal["male", "female"] = Field(description="'male' or 'female'.")
    Age: float = Field(gt=0, lt=100, description="Age in years, above 0 and below 100.")
    SibSp: int = Field(ge=0, le=10, description="Siblings and spouses aboard, 0 to 10.")
    Parch: int = Field(ge=0, le=10, description="Parents and children aboard, 0 to 10.")
    Fare: float = Field(ge=0, le=1000, description="Ticket fare, 0 to 1,000.")
    Embarked: Literal["C", "Q", "S"] = Field(
        description="Port of embarkation: C = Cherbourg, Q = Queenstown, S = Southampton."
    )


class PassengerBatch(RootModel[list[Passenger]]):
    """A JSON list of 1 to 1,000 passengers."""

    root: list[Passenger] = Field(min_length=1, max_length=MAX_BATCH_SIZE)

    model_config = ConfigDict(json_schema_extra={"examples": [list(EXAMPLES)]})


class PredictionResponse(BaseModel):
    """The model's answer for one passenger."""

    prediction: Literal[0, 1] = Field(description="1 if the model predicts survival, else 0.")
    survival_status: Literal["Survived", "Not Survived"] = Field(
        description="The prediction in words."
    )


class BatchItem(PredictionResponse):
    """The model's answer for one passenger of a batch."""

    passenger_index: int = Field(description="Position of the passenger in the request, from 0.")


# --- Model monitoring (titanic_api.feedback_metrics): ids on real predictions, and their labels.
PREDICTION_ID = Field(
    description="This prediction's id: send it back with the true outcome to POST /feedback."
)


class IdentifiedPrediction(PredictionResponse):
    """The model's answer for one real passenger, with the id its label will quote."""

    prediction_id: str = PREDICTION_ID


class IdentifiedBatchItem(BatchItem):
    """The model's answer for one passenger of a batch, with its id."""

    prediction_id: str = PREDICTION_ID


class Label(BaseModel):
    """The true outcome of one earlier prediction."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"prediction_id": "0" * 32, "survived": 1}]},
    )

    prediction_id: str = Field(
        min_length=1, max_length=64, description="The id the prediction's answer gave."
    )
    survived: int = Field(ge=0, le=1, description="1 if the passenger survived, else 0.")


class LabelBatch(RootModel[list[Label]]):
    """A JSON list of 1 to 1,000 labels."""

    root: list[Label] = Field(min_length=1, max_length=MAX_BATCH_SIZE)


class FeedbackResponse(BaseModel):
    """What POST /feedback answers: how many labels counted, and why the others did not."""

    accepted: int = Field(description="Labels stored and counted (first label of a prediction).")
    unknown: int = Field(description="Labels for ids no prediction has: never counted.")
    already_labelled: int = Field(
        description="Labels for predictions that already had one: never counted twice."
    )


class BatchResponse(BaseModel):
    """The model's answers for a batch, in request order."""

    batch_predictions: list[IdentifiedBatchItem]


class SimulatedPrediction(BatchItem):
    """One simulated passenger and the model's answer."""

    passenger: Passenger


class SimulationResponse(BaseModel):
    """What POST /simulate_predictions answers."""

    num_executions: int = Field(description="How many passengers were simulated.")
    seed: int | None = Field(description="The seed used, if one was given.")
    predictions: list[SimulatedPrediction]


class HealthResponse(BaseModel):
    """What GET /health answers."""

    status: Literal["ok", "degraded"] = Field(
        description="'ok' when the model is loaded, 'degraded' when predictions would answer 503."
    )
    version: str = Field(description="The version of this service.")
    service: str = Field(description="The name of this service.")
    dependencies: dict[str, str] = Field(
        description="Library versions, and whether the model is loaded."
    )
    reference_profile: Literal["loaded", "absent"] = Field(
        description="'absent' when the model has no reference profile: no drift metrics then."
    )
    feedback_store: Literal["sqlite", "postgresql", "off"] = Field(
        description="Where prediction ids and labels are kept (TITANIC_FEEDBACK_STORE)."
    )


class ReadyResponse(BaseModel):
    """What GET /ready answers: 200 with ``ready`` true, or 503 with ``ready`` false."""

    ready: bool = Field(description="Whether predictions would be answered now.")
    detail: str = Field(description="Why not, or 'The model is loaded.'.")


class ErrorMessage(BaseModel):
    """The body of a 400, 413 or 503 answer."""

    detail: str = Field(description="What went wrong, in words.")
