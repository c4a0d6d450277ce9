"""Fixed facts of the simulated organisation: regions, offices, networks, services, user agents."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Place:
    """Where an address geolocates."""

    country: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Region:
    """A cloud region: its location, time zone, public address blocks and private /16 octet."""

    name: str
    place: Place
    utc_offset: float
    public_blocks: tuple[str, ...]
    private_octet: int


@dataclass(frozen=True, slots=True)
class Office:
    """An office: staff work there and from home nearby, on local ISPs."""

    name: str
    place: Place
    utc_offset: float
    egress_block: str
    home_blocks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Network:
    """An outside network (hosting provider or ISP) in one place."""

    name: str
    place: Place
    blocks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServiceTemplate:
    """A kind of service the organisation runs; keys are dealt to services by ``weight``."""

    name: str
    schedule: str  # always | business | nightly | ci
    classification: str
    environment: str
    account: str
    compute: str  # eks | ecs | ec2 | lambda | actions
    language: str
    roles: tuple[str, ...]
    weight: float
    peak_rate: float  # calls per minute per (role, key) at the busiest hour
    mix: str
    purposes: tuple[str, ...]
    regions: tuple[str, ...]
    office: str


REGIONS: dict[str, Region] = {
    region.name: region
    for region in (
        Region("us-east-1", Place("US", 38.9445, -77.4558), -4, ("3.80", "18.204", "44.193", "52.70"), 20),
        Region("us-west-2", Place("US", 45.8399, -119.7006), -7, ("34.208", "35.160", "44.224"), 24),
        Region("eu-west-1", Place("IE", 53.3498, -6.2603), 1, ("34.240", "52.16", "54.72", "63.32"), 30),
        Region("eu-central-1", Place("DE", 50.1109, 8.6821), 2, ("3.64", "18.156", "35.156"), 34),
        Region("ap-southeast-2", Place("AU", -33.8688, 151.2093), 10, ("3.24", "13.54", "54.66"), 40),
    )
}
# a region no service runs in during the history, in a country the organisation works from
EXPANSION_REGION = Region("eu-west-2", Place("GB", 51.5072, -0.1276), 1, ("3.8", "18.130", "35.176"), 44)

OFFICES: dict[str, Office] = {
    office.name: office
    for office in (
        Office("new-york", Place("US", 40.7128, -74.0060), -4, "65.51", ("24.90", "68.173", "100.2")),
        Office("london", Place("GB", 51.5072, -0.1276), 1, "81.2", ("86.128", "90.196", "109.144")),
        Office("berlin", Place("DE", 52.5200, 13.4050), 2, "79.192", ("84.57", "91.65", "93.200")),
        Office("sydney", Place("AU", -33.8688, 151.2093), 10, "49.180", ("101.160", "120.148")),
    )
}
# hosting providers in countries the organisation works from: a new network, not a new country
HOSTING: tuple[Network, ...] = (
    Network("hosting-frankfurt", Place("DE", 50.1155, 8.6842), ("46.101", "164.90")),
    Network("hosting-newark", Place("US", 40.7357, -74.1724), ("45.79", "172.104")),
    Network("hosting-london", Place("GB", 51.5085, -0.0761), ("51.195", "141.95")),
)
# residential ISPs far from each office, in countries the organisation works from
ISPS: tuple[Network, ...] = (
    Network("isp-chicago", Place("US", 41.8781, -87.6298), ("73.44", "98.213")),
    Network("isp-munich", Place("DE", 48.1351, 11.5820), ("87.161", "95.90")),
    Network("isp-manchester", Place("GB", 53.4808, -2.2426), ("82.15", "86.4")),
    Network("isp-melbourne", Place("AU", -37.8136, 144.9631), ("110.174", "124.171")),
)
# countries the organisation never works from
FOREIGN: tuple[Network, ...] = (
    Network("isp-sao-paulo", Place("BR", -23.5505, -46.6333), ("177.54", "189.6")),
    Network("isp-bucharest", Place("RO", 44.4268, 26.1025), ("89.137", "86.124")),
    Network("isp-hanoi", Place("VN", 21.0278, 105.8342), ("113.185", "14.232")),
    Network("isp-lagos", Place("NG", 6.5244, 3.3792), ("105.112", "197.210")),
    Network("isp-jakarta", Place("ID", -6.2088, 106.8456), ("36.88", "114.124")),
)
CI_RUNNERS = Network("ci-runners", Place("US", 36.6681, -78.3889), ("20.102", "4.227", "52.225"))
CONTINENT = {"US": "america", "DE": "europe", "GB": "europe", "IE": "europe", "AU": "oceania"}

ACCOUNTS = {
    "commerce": "402611877203",
    "platform": "718266345901",
    "data": "559218734012",
    "delivery": "236719048825",
    "staging": "871402265537",
    "security": "903145622870",
}

_T = ServiceTemplate
# Services in the order keys are dealt when the fleet is small: every schedule early on.
# fmt: off
SERVICES: tuple[ServiceTemplate, ...] = (
    _T("payments", "always", "restricted", "production", "commerce", "eks", "java", ("api", "worker"),
       1.3, 3.0, "envelope", ("data", "secrets", "data"), ("us-east-1", "eu-central-1"), "new-york"),
    _T("identity", "always", "restricted", "production", "platform", "eks", "go", ("auth", "token"),
       1.0, 2.5, "reader", ("signing", "secrets", "data"), ("eu-west-1", "us-east-1"), "london"),
    _T("reporting", "business", "confidential", "production", "data", "ecs", "python", ("app",),
       0.8, 2.5, "reader", ("data", "storage"), ("us-east-1",), "new-york"),
    _T("etl", "nightly", "confidential", "production", "data", "ecs", "python", ("loader",),
       0.8, 9.0, "writer", ("data", "storage"), ("us-east-1",), "new-york"),
    _T("release", "ci", "internal", "production", "delivery", "actions", "cli", ("github-actions-release",),
       0.3, 1.2, "signer", ("signing",), ("us-east-1",), "london"),
    _T("orders", "always", "confidential", "production", "commerce", "eks", "java", ("api", "consumer"),
       1.3, 3.5, "envelope", ("data", "storage", "secrets"), ("us-east-1", "us-west-2"), "new-york"),
    _T("crm", "business", "confidential", "production", "platform", "ec2", "java", ("app",),
       0.7, 2.0, "reader", ("data", "secrets"), ("eu-west-1",), "london"),
    _T("checkout", "always", "restricted", "production", "commerce", "ecs", "node", ("web",),
       1.0, 3.0, "reader", ("data", "secrets"), ("eu-central-1", "eu-west-1"), "berlin"),
    _T("session", "always", "confidential", "production", "platform", "lambda", "python", ("handler",),
       0.8, 5.0, "reader", ("data",), ("eu-west-1",), "london"),
    _T("billing", "business", "restricted", "production", "commerce", "eks", "java", ("invoicer",),
       0.8, 2.0, "envelope", ("data", "signing"), ("us-east-1",), "new-york"),
    _T("gateway", "always", "internal", "production", "commerce", "ecs", "go", ("edge",),
       0.6, 3.0, "envelope", ("data",), ("us-east-1", "eu-central-1", "ap-southeast-2"), "new-york"),
    _T("hr-portal", "business", "restricted", "production", "platform", "ecs", "node", ("web",),
       0.5, 1.2, "reader", ("data", "secrets"), ("eu-central-1",), "berlin"),
    _T("warehouse", "nightly", "confidential", "production", "data", "ec2", "java", ("export",),
       0.6, 8.0, "reader", ("data",), ("eu-west-1",), "london"),
    _T("fraud", "always", "restricted", "production", "commerce", "eks", "python", ("scorer",),
       0.8, 2.5, "reader", ("data", "secrets"), ("eu-central-1",), "berlin"),
    _T("search", "always", "internal", "production", "commerce", "ecs", "python", ("indexer", "query"),
       0.8, 1.5, "envelope", ("data", "storage"), ("us-west-2",), "new-york"),
    _T("media", "always", "public", "production", "commerce", "ecs", "go", ("uploader",),
       0.6, 2.0, "writer", ("storage",), ("ap-southeast-2",), "sydney"),
    _T("support", "business", "internal", "production", "platform", "ecs", "node", ("desk",),
       0.6, 1.5, "reader", ("data",), ("ap-southeast-2",), "sydney"),
    _T("inventory", "always", "confidential", "production", "commerce", "ecs", "dotnet", ("sync",),
       0.7, 1.5, "envelope", ("data",), ("ap-southeast-2",), "sydney"),
    _T("payroll", "business", "restricted", "production", "platform", "lambda", "python", ("calc",),
       0.4, 1.0, "envelope", ("data",), ("eu-central-1",), "berlin"),
    _T("ml-features", "nightly", "internal", "production", "data", "eks", "python", ("trainer",),
       0.5, 7.0, "reader", ("data", "storage"), ("us-west-2",), "new-york"),
    _T("notifications", "always", "internal", "production", "platform", "lambda", "node", ("sender",),
       0.6, 1.5, "reader", ("secrets",), ("us-east-1",), "new-york"),
    _T("sandbox", "business", "internal", "staging", "staging", "eks", "python", ("app",),
       0.6, 0.8, "envelope", ("data",), ("us-east-1", "eu-central-1"), "berlin"),
)
# fmt: on
NEW_SERVICES = ("recommendations", "ledger-sync", "partner-api", "geo-routing")

OPERATION_MIXES: dict[str, dict[str, float]] = {
    "envelope": {"GenerateDataKey": 0.45, "Decrypt": 0.38, "Encrypt": 0.12, "DescribeKey": 0.05},
    "reader": {"Decrypt": 0.82, "GenerateDataKey": 0.1, "DescribeKey": 0.08},
    "writer": {
        "GenerateDataKey": 0.52,
        "Encrypt": 0.28,
        "Decrypt": 0.08,
        "GenerateDataKeyWithoutPlaintext": 0.06,
        "ReEncrypt": 0.02,
        "DescribeKey": 0.04,
    },
    "signer": {"Sign": 0.9, "GetPublicKey": 0.04, "DescribeKey": 0.06},
    "verifier": {"Verify": 0.85, "GetPublicKey": 0.15},
    "secrets": {"Decrypt": 1.0},
    "storage": {"GenerateDataKey": 0.5, "Decrypt": 0.5},
    "person-cli": {"Decrypt": 0.55, "Encrypt": 0.15, "DescribeKey": 0.2, "GenerateDataKey": 0.1},
    "person-console": {
        "DescribeKey": 0.45,
        "GetKeyPolicy": 0.2,
        "ListResourceTags": 0.15,
        "GetKeyRotationStatus": 0.1,
        "ListGrants": 0.1,
    },
}

_LINUX = "Linux/5.10.225-213.878.amzn2.x86_64"
SDK_AGENTS: dict[str, tuple[str, str]] = {
    "java": (
        f"aws-sdk-java/2.25.16 {_LINUX} OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 "
        "vendor/Amazon.com_Inc. md/internal io/sync http/Apache cfg/retry-mode/standard",
        f"aws-sdk-java/2.28.11 {_LINUX} OpenJDK_64-Bit_Server_VM/21.0.4+7-LTS Java/21.0.4 "
        "vendor/Amazon.com_Inc. md/internal io/sync http/Apache cfg/retry-mode/standard",
    ),
    "python": (
        f"Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#{_LINUX[6:]} md/arch#x86_64 "
        "lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.34.84",
        f"Boto3/1.35.24 md/Botocore#1.35.24 ua/2.0 os/linux#{_LINUX[6:]} md/arch#x86_64 "
        "lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard Botocore/1.35.24",
    ),
    "go": (
        "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/kms#1.35.1",
        "aws-sdk-go-v2/1.30.5 os/linux lang/go#1.23.1 md/GOOS#linux md/GOARCH#amd64 api/kms#1.36.2",
    ),
    "node": (
        "aws-sdk-js/3.554.0 ua/2.1 os/linux#5.10.225-213.878.amzn2.x86_64 lang/js md/nodejs#20.12.2 "
        "api/kms#3.554.0",
        "aws-sdk-js/3.658.1 ua/2.1 os/linux#5.10.225-213.878.amzn2.x86_64 lang/js md/nodejs#20.17.0 "
        "api/kms#3.658.1",
    ),
    "dotnet": (
        "aws-sdk-dotnet-coreclr/3.7.303.13 aws-sdk-dotnet-core/3.7.303.22 .NET_Core/8.0.4 "
        "OS/Linux_5.10.225 ClientAsync",
        "aws-sdk-dotnet-coreclr/3.7.400.27 aws-sdk-dotnet-core/3.7.400.26 .NET_Core/8.0.8 "
        "OS/Linux_5.10.225 ClientAsync",
    ),
    "lambda-python": (
        "Boto3/1.34.126 md/Botocore#1.34.126 ua/2.0 os/linux#5.10.224-233.880.amzn2.x86_64 md/arch#x86_64 "
        "lang/python#3.12.4 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy "
        "Botocore/1.34.126",
        "Boto3/1.35.20 md/Botocore#1.35.20 ua/2.0 os/linux#5.10.224-233.880.amzn2.x86_64 md/arch#x86_64 "
        "lang/python#3.12.5 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy "
        "Botocore/1.35.20",
    ),
    "lambda-node": (
        "aws-sdk-js/3.583.0 ua/2.1 os/linux#5.10.224-233.880.amzn2.x86_64 lang/js md/nodejs#20.14.0 "
        "exec-env/AWS_Lambda_nodejs20.x api/kms#3.583.0",
        "aws-sdk-js/3.637.0 ua/2.1 os/linux#5.10.224-233.880.amzn2.x86_64 lang/js md/nodejs#20.16.0 "
        "exec-env/AWS_Lambda_nodejs20.x api/kms#3.637.0",
    ),
    "cli": (
        "aws-cli/2.15.40 md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0-1018-azure md/arch#x86_64 "
        "lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe "
        "md/distrib#ubuntu.22 md/prompt#off",
        "aws-cli/2.17.50 md/awscrt#0.21.2 ua/2.0 os/linux#6.8.0-1014-azure md/arch#x86_64 "
        "lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe "
        "md/distrib#ubuntu.24 md/prompt#off",
    ),
}
PERSON_AGENTS: tuple[str, ...] = (
    "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.11.9 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off",
    "aws-cli/2.16.8 md/awscrt#0.20.11 ua/2.0 os/linux#6.8.0-40-generic md/arch#x86_64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off",
    "aws-cli/2.15.58 md/awscrt#0.19.19 ua/2.0 os/windows#10 md/arch#amd64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off",
)
CONSOLE_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/128.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
)
PEOPLE = (
    "amara.okafor",
    "ben.schulz",
    "chloe.martin",
    "diego.alvarez",
    "elif.kaya",
    "finn.murphy",
    "grace.lin",
    "hugo.weber",
    "isla.brown",
    "jonas.becker",
    "kiran.patel",
    "lena.fischer",
    "mateo.rossi",
    "nora.walsh",
    "oscar.nguyen",
    "priya.raman",
    "quentin.dubois",
    "rosa.jimenez",
    "sam.taylor",
    "tara.kelly",
    "umar.haddad",
    "vera.novak",
    "will.chen",
    "xena.papadopoulos",
    "yuki.tanaka",
    "zane.cooper",
    "alba.serra",
    "bram.jansen",
    "cleo.harris",
    "dev.sharma",
    "emil.larsen",
    "fatima.zahra",
    "gus.moreau",
    "hana.kim",
    "ivo.petrov",
    "jade.wright",
)
SSO_ROLES = ("Developer", "ReadOnly", "PowerUser", "SupportEngineer")
SECRET_NAMES = (
    "db-password",
    "api-token",
    "stripe-key",
    "oauth-client",
    "smtp-credentials",
    "signing-salt",
    "redis-auth",
    "webhook-secret",
    "jwt-secret",
    "partner-key",
    "s3-upload-token",
    "kafka-sasl",
)
PARAMETER_NAMES = (
    "config/db-url",
    "config/feature-flags",
    "config/endpoint",
    "credentials/service-account",
    "credentials/license",
    "config/queue-url",
    "credentials/readonly-db",
    "config/tls-bundle",
)
