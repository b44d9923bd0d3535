"""``org create``, ``org get`` and ``org ls``: organizations (platform); ``org webhook``: the
caller's org's outgoing webhook (its admin sets it)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta

from google.protobuf import duration_pb2

from engine.api.v1 import link_service_pb2, organization_service_pb2, resources_pb2
from engine.cli.enginectl._client import CliError, EngineClient
from engine.cli.enginectl._common import (
    EXIT_OK,
    Subcommands,
    add_command,
    collect,
    json_output,
    positive_int,
    print_lines,
)
from engine.cli.enginectl._output import emit, print_json, table

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``org`` and its commands."""
    org = commands.add_parser(
        "org", help="manage organizations (admin)", description="Manage organizations."
    )
    org_commands = org.add_subparsers(title="commands", metavar="COMMAND", required=True)
    create = add_command(
        org_commands,
        "create",
        create_org,
        "create an organization",
        "Provision an organization.",
    )
    create.add_argument("org_id", metavar="ORG", help="the org id")
    create.add_argument(
        "--retention-days", type=positive_int, metavar="N", help="days closed runs are kept"
    )
    get = add_command(
        org_commands, "get", get_org, "show an organization", "Show one organization."
    )
    get.add_argument("org_id", metavar="ORG", help="the org id")
    add_command(org_commands, "ls", list_orgs, "list organizations", "List organizations.")
    webhook = add_command(
        org_commands,
        "webhook",
        webhook_command,
        "show, set or clear your org's webhook",
        "Show your org's outgoing webhook; with --url (and --secret, or ENGINE_WEBHOOK_SECRET),"
        " set it (the org's admin); with --clear, remove it. Each action that starts waiting in"
        " a run started afterwards is POSTed to it, signed (header Engine-Signature).",
    )
    webhook.add_argument("--url", help="where deliveries go (http or https)")
    webhook.add_argument(
        "--secret",
        default=os.environ.get("ENGINE_WEBHOOK_SECRET", ""),
        help="the signing secret, at least 16 characters (default: ENGINE_WEBHOOK_SECRET)",
    )
    webhook.add_argument("--clear", action="store_true", help="remove the webhook")


def _row(org: resources_pb2.Organization) -> tuple[str, str, str, str]:
    days = org.retention.ToTimedelta() / timedelta(days=1)
    retention = f"{days:g}d" if org.HasField("retention") else ""
    return org.org_id, org.namespace, org.address, retention


def create_org(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl org create ORG``: provision an organization (idempotent)."""
    request = organization_service_pb2.CreateOrganizationRequest(org_id=args.org_id)
    if args.retention_days:
        request.retention.CopyFrom(duration_pb2.Duration(seconds=args.retention_days * 86400))
    response = client.call(client.organizations.CreateOrganization, request)
    if json_output(args):
        print_json(response, sys.stdout)
        return EXIT_OK
    org_id, namespace, address, retention = _row(response.organization)
    verb = "created" if response.created else "exists"
    emit(f"{verb} {org_id}: namespace {namespace} at {address}, retention {retention}")
    return EXIT_OK


def get_org(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl org get ORG``: one organization, as ``org ls`` shows it."""
    request = organization_service_pb2.GetOrganizationRequest(org_id=args.org_id)
    response = client.call(client.organizations.GetOrganization, request)
    if json_output(args):  # the organization itself, as each item of ``org ls -o json``
        print_json(response.organization, sys.stdout)
        return EXIT_OK
    print_lines(table(("ORG", "NAMESPACE", "ADDRESS", "RETENTION"), [_row(response.organization)]))
    return EXIT_OK


def webhook_command(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl org webhook [--url URL --secret S | --clear]``."""
    if args.url and args.clear:
        raise CliError("give --url or --clear, not both")
    if args.url or args.clear:
        request = link_service_pb2.SetWebhookRequest(
            url="" if args.clear else args.url, secret=args.secret
        )
        response = client.call(client.links.SetWebhook, request)
        if json_output(args):
            print_json(response, sys.stdout)
        else:
            emit(f"webhook set: {response.url}" if response.url else "webhook cleared")
        return EXIT_OK
    shown = client.call(client.links.GetWebhook, link_service_pb2.GetWebhookRequest())
    if json_output(args):
        print_json(shown, sys.stdout)
    else:
        emit(shown.url or "no webhook")
    return EXIT_OK


def list_orgs(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl org ls``: every organization."""
    request = organization_service_pb2.ListOrganizationsRequest()
    found, _ = collect(client, client.organizations.ListOrganizations, request, "organizations")
    if json_output(args):
        print_json(
            organization_service_pb2.ListOrganizationsResponse(organizations=found), sys.stdout
        )
        return EXIT_OK
    if not found:
        emit("no organizations")
        return EXIT_OK
    print_lines(table(("ORG", "NAMESPACE", "ADDRESS", "RETENTION"), [_row(o) for o in found]))
    return EXIT_OK
