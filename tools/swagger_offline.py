"""The final lesson's /docs page in a browser with no internet, for the Swagger UI pictures.

FastAPI's /docs page loads Swagger UI from a CDN, which may be unreachable (it is, on the
machine the pictures are made on). The browser here never goes to the internet: every
request that is not for a local server is either answered from the Swagger UI copy in the
PyPI package ``swagger-ui-bundle`` or refused. That copy is Swagger UI 4.15, which predates
OpenAPI 3.1 and refuses FastAPI's 3.1 schema ("Unable to render this definition"), so for
the picture the schema is handed to it in the equivalent OpenAPI 3.0 spelling
(``to_openapi_30``). The lessons are not changed: they still serve 3.1.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.servers import HOST


def to_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's OpenAPI 3.1 schema in the 3.0 spelling that Swagger UI 4 understands.

    Only what these lessons use: ``examples`` lists become ``example``, numeric
    ``exclusiveMinimum``/``exclusiveMaximum`` become a bound plus a flag,
    ``anyOf [X, null]`` becomes ``X`` with ``nullable``, ``const`` becomes a
    one-value ``enum``.
    """

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: convert(value) for key, value in node.items()}
        if isinstance(out.get("examples"), list) and out["examples"]:
            out["example"] = out.pop("examples")[0]
        for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(bound), int | float) and not isinstance(out[bound], bool):
                out[plain] = out[bound]
                out[bound] = True
        variants = out.get("anyOf")
        if isinstance(variants, list) and {"type": "null"} in variants:
            rest = [v for v in variants if v != {"type": "null"}]
            del out["anyOf"]
            out.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
            out["nullable"] = True
        if "const" in out:
            out["enum"] = [out.pop("const")]
        return out

    converted: dict[str, Any] = convert(document)
    converted["openapi"] = "3.0.3"
    return converted


def offline_router(local_url: str) -> Callable[[Any], None]:
    """A Playwright route handler: local servers pass, Swagger UI files are served, rest refused."""
    import swagger_ui_bundle  # the Swagger UI dist, shipped on PyPI

    dist = Path(str(swagger_ui_bundle.swagger_ui_path))
    types = {".js": "application/javascript", ".css": "text/css", ".png": "image/png"}

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(local_url + "/openapi.json"):
            with urllib.request.urlopen(url, timeout=10) as response:
                document = json.load(response)
            route.fulfill(body=json.dumps(to_openapi_30(document)), content_type="application/json")
        elif url.startswith(f"http://{HOST}:"):
            route.continue_()
        else:
            name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
            local = dist / name
            if local.suffix in types and local.is_file():
                route.fulfill(path=str(local), content_type=types[local.suffix])
            else:
                route.abort()  # e.g. FastAPI's favicon on its website: not needed

    return handle


def screenshot_swagger(page: Any, url: str, out: Path) -> list[Path]:
    """/docs as a learner first sees it, and a "Try it out" of POST /predict_single."""
    page.route("**/*", offline_router(url))
    page.goto(url + "/docs")
    page.wait_for_selector(".opblock-summary", timeout=30_000)
    overview = out / "swagger_ui.png"
    page.screenshot(path=str(overview))

    operation = page.locator(".opblock-post").filter(has_text="/predict_single").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table").first
    answer.locator(".response-col_status").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # let the response block finish laying out
    # From the operation's header down to the server's response (not the static docs below),
    # measured in page coordinates.
    top, bottom, left, width = page.evaluate(
        """([operation, answer]) => {
            const a = operation.getBoundingClientRect(), b = answer.getBoundingClientRect();
            return [a.top + window.scrollY, b.bottom + window.scrollY, a.left, a.width];
        }""",
        [operation.element_handle(), answer.element_handle()],
    )
    try_it = out / "swagger_try_it_out.png"
    page.screenshot(
        path=str(try_it),
        full_page=True,
        clip={"x": left, "y": top, "width": width, "height": bottom - top + 12},
    )
    page.unroute("**/*")
    return [overview, try_it]
