"""A control plane serving TLS and verifying asymmetric tokens (RS256/ES256 with a public key).

The server holds only the public key: tokens are signed elsewhere (an identity provider), so a
token signed with the HS256 secret of another deployment, or with another key, is refused.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.api.v1 import (
    definition_service_pb2 as definitions_pb,
)
from engine.api.v1 import (
    definition_service_pb2_grpc as definitions_grpc,
)
from engine.api.v1 import resources_pb2
from engine.api.v1 import (
    workflow_service_pb2 as workflows_pb,
)
from engine.api.v1 import (
    workflow_service_pb2_grpc as workflows_grpc,
)
from engine.identity import TokenVerifier, issue_token
from engine.tenancy import Endpoint, PrefixResolver
from tests.server.harness import (
    ControlPlaneKit,
    ServingStack,
    ask_yaml,
    bearer,
    eventually,
    open_stack,
    quick_yaml,
    unique,
)


def _pem_private(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_public(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "engine-test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(_pem_private(key))
    return cert_file, key_file


@dataclass
class SecurePlane:
    stack: ServingStack
    channel: grpc.aio.Channel
    signing_key: bytes
    algorithm: str
    root_certificate: bytes

    def token(self, org_id: str = "acme") -> str:
        return issue_token(self.signing_key, org_id, algorithm=self.algorithm, ttl_seconds=600)


@pytest.fixture(params=["RS256", "ES256"])
async def secure(
    request: pytest.FixtureRequest, kit: ControlPlaneKit, tmp_path: Path
) -> AsyncIterator[SecurePlane]:
    """A TLS control plane over the session server's orgs (whose pool runs the workflows)."""
    algorithm: str = request.param
    signer = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    cert_file, key_file = _self_signed(tmp_path)
    stack = await open_stack(
        PrefixResolver(Endpoint(kit.stack.resolver.endpoint.address), kit.prefix),
        workers=False,
        verifier=TokenVerifier(_pem_public(signer), algorithm),
        tls=(str(cert_file), str(key_file)),
    )
    root = cert_file.read_bytes()
    channel = grpc.aio.secure_channel(
        stack.address, grpc.ssl_channel_credentials(root_certificates=root)
    )
    try:
        yield SecurePlane(stack, channel, _pem_private(signer), algorithm, root)
    finally:
        await channel.close()
        await stack.close()


async def test_a_tls_server_serves_health_and_the_api_with_asymmetric_tokens(
    secure: SecurePlane,
) -> None:
    health = health_pb2_grpc.HealthStub(secure.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

    definitions = definitions_grpc.DefinitionServiceStub(secure.channel)
    validated = await definitions.ValidateDefinition(
        definitions_pb.ValidateDefinitionRequest(yaml=ask_yaml("tls-greeter")),
        metadata=bearer(secure.token()),
    )
    assert validated.valid and validated.name == "tls-greeter"

    workflows = workflows_grpc.WorkflowServiceStub(secure.channel)
    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_yaml=quick_yaml(unique("tls-quick"))),
        metadata=bearer(secure.token()),
    )
    done = await eventually(
        lambda: workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=started.workflow_id),
            metadata=bearer(secure.token()),
        ),
        lambda r: r.workflow.status == resources_pb2.RUN_STATUS_COMPLETED,
        what="the run over TLS completed",
    )
    assert done.workflow.result.number_value == 2


async def test_tokens_not_signed_by_the_configured_key_are_refused(
    secure: SecurePlane, kit: ControlPlaneKit
) -> None:
    definitions = definitions_grpc.DefinitionServiceStub(secure.channel)
    request = definitions_pb.ValidateDefinitionRequest(yaml=ask_yaml("tls-greeter"))
    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if secure.algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    cases = {
        # A shared-secret token: the server accepts only its asymmetric algorithm.
        kit.token("acme"): "invalid token: The specified alg value is not allowed",
        issue_token(
            _pem_private(other), "acme", algorithm=secure.algorithm
        ): "invalid token: Signature verification failed",
    }
    for token, message in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await definitions.ValidateDefinition(request, metadata=bearer(token))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert caught.value.details() == message


async def test_a_plaintext_client_cannot_talk_to_a_tls_server(secure: SecurePlane) -> None:
    async with grpc.aio.insecure_channel(secure.stack.address) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(plaintext).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
