"""A first FastAPI app: one endpoint that proves the server runs.

What it adds: nothing yet; this is the smallest FastAPI app there is. An
``app`` object, one path operation, and a function that returns a dict which
FastAPI turns into JSON.

Run it (from the repository root):

    uvicorn lessons.fastapi_01_test_app:app --reload

Try it:
- http://127.0.0.1:8000/ answers {"message": "Hello, FastAPI is working!"}
- http://127.0.0.1:8000/docs is Swagger UI, interactive documentation that
  FastAPI writes for you from the code ("Try it out" sends a real request);
- http://127.0.0.1:8000/redoc is the same documentation rendered by ReDoc;
- http://127.0.0.1:8000/openapi.json is the machine-readable schema behind both.
"""

from fastapi import FastAPI

app = FastAPI(
    title="Titanic tutorial 01: hello FastAPI",
    description="The smallest app: one endpoint that proves the server runs.",
    version="1.0.0",
)


@app.get("/")
def read_root() -> dict[str, str]:
    """Say hello. The return type is a plain dict; FastAPI serialises it to JSON."""
    return {"message": "Hello, FastAPI is working!"}
