"""One list of routes makes both the router and the OpenAPI 3.1 document.

A route names its method, path template, handler, parameters with their JSON schemas,
request body and every answer it can give with that answer's schema; the router matches
on the same templates, so the document cannot drift from what is served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from node.web import Handler, Request, Response, error, json_response

Schema = dict[str, Any]
ERROR_SCHEMA: Schema = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
ERROR_REF: Schema = {"$ref": "#/components/schemas/Error"}
DOCUMENT_SCHEMA: Schema = {"type": "object", "required": ["openapi", "paths"]}


@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    where: str = "query"  # or "path"
    description: str = ""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    responses: dict[int, tuple[str, Schema | None]]  # status -> (description, JSON schema)
    params: tuple[Param, ...] = ()
    body: dict[str, Schema] = field(default_factory=dict)  # media type -> schema
    content_type: str = "application/json"  # of the answers with a schema

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.strip("/").split("/"))


class Router:
    """Exact paths by dictionary, templates by segments; HEAD is served as GET."""

    def __init__(self, routes: list[Route]):
        self.routes = routes
        self.exact: dict[str, dict[str, Route]] = {}
        self.templated: list[Route] = []
        for route in routes:
            if "{" in route.path:
                self.templated.append(route)
            else:
                self.exact.setdefault(route.path, {})[route.method] = route

    async def __call__(self, request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        by_method = self.exact.get(request.path)
        if by_method is None:
            by_method = self._match_template(request)
        if not by_method:
            return error(404, "not_found", f"no route {request.path}")
        route = by_method.get(method)
        if route is None:
            allowed = ", ".join(sorted(by_method))
            return error(405, "method_not_allowed", allowed, (("allow", allowed),))
        return await route.handler(request)

    def _match_template(self, request: Request) -> dict[str, Route]:
        parts = request.path.strip("/").split("/")
        found: dict[str, Route] = {}
        for route in self.templated:
            params = _bind(route.segments, parts)
            if params is not None and route.method not in found:
                found[route.method] = route
                request.path_params = params
        return found


def _bind(template: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    if len(template) != len(parts):
        return None
    params = {}
    for want, got in zip(template, parts, strict=True):
        if want.startswith("{"):
            if not got:
                return None
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params


def with_document(routes: list[Route], title: str, version: str = "1") -> list[Route]:
    """The routes and `GET /openapi.json`, which serves the document made from them all."""

    async def openapi(request: Request) -> Response:
        return json_response(document)

    served = [*routes, Route("GET", "/openapi.json", openapi, "This document",
                             {200: ("OpenAPI 3.1", DOCUMENT_SCHEMA)})]  # fmt: skip
    document = openapi_document(served, title, version)
    return served


def openapi_document(routes: list[Route], title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA}},
    }


def _operation(route: Route) -> dict[str, Any]:
    name = route.handler.__name__.strip("_")
    operation: dict[str, Any] = {"operationId": name, "summary": route.summary}
    if route.params:
        operation["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in route.params
        ]
    if route.body:
        content = {kind: {"schema": schema} for kind, schema in route.body.items()}
        operation["requestBody"] = {"required": True, "content": content}
    operation["responses"] = {
        str(status): _answer(route, status, description, schema)
        for status, (description, schema) in sorted(route.responses.items())
    }
    return operation


def _answer(route: Route, status: int, description: str, schema: Schema | None) -> dict[str, Any]:
    if status >= 400:  # the one error shape, unless a route answers in its own (Appendix B)
        error_schema = ERROR_REF if schema is None else schema
        return {
            "description": description,
            "content": {"application/json": {"schema": error_schema}},
        }
    if schema is None:
        return {"description": description, "content": {route.content_type: {}}}
    return {"description": description, "content": {route.content_type: {"schema": schema}}}
