"""The app uvicorn serves: ``uvicorn titanic_api.main:app``."""

from titanic_api.app import create_app

app = create_app()
