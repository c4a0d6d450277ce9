"""The organisation's fixed reference data: regions, offices, foreign places, services, people, agents."""

from __future__ import annotations

from typing import NamedTuple


class Place(NamedTuple):
    """Where the organisation runs or works: country, coordinates, UTC offset and address blocks."""

    country: str
    lat: float
    lon: float
    utc_offset: float  # hours, summer time
    blocks: tuple[str, ...]  # /16 prefixes seen there


class ForeignPlace(NamedTuple):
    """A place the organisation never operates from."""

    country: str
    lat: float
    lon: float
    blocks: tuple[str, ...]


# AWS regions and the AWS public /16 blocks seen there
REGIONS = {
    "us-east-1": Place(
        "US", 39.0438, -77.4874, -4, ("3.208", "3.215", "34.195", "34.204", "44.197", "54.157")
    ),
    "us-west-2": Place("US", 45.8399, -119.7006, -7, ("34.210", "34.217", "44.228", "44.237", "54.186")),
    "eu-central-1": Place(
        "DE", 50.1109, 8.6821, 2, ("3.120", "3.122", "18.184", "18.194", "52.28", "35.157")
    ),
    "eu-west-1": Place("IE", 53.3498, -6.2603, 1, ("34.240", "34.246", "52.208", "52.212", "54.72")),
    "ap-southeast-1": Place("SG", 1.3521, 103.8198, 8, ("13.228", "13.229", "18.136", "18.139", "54.169")),
}
REGION_WEIGHTS = {"us-east-1": 0.45, "us-west-2": 0.1, "eu-central-1": 0.25, "eu-west-1": 0.12}
REGION_WEIGHTS["ap-southeast-1"] = 0.08
SECONDARY_REGION = {"us-east-1": "us-west-2", "us-west-2": "us-east-1", "eu-central-1": "eu-west-1"}
SECONDARY_REGION["eu-west-1"] = "eu-central-1"
# offices and the ISP /16 blocks of their egress and of home connections near them
OFFICES = {
    "new-york": Place("US", 40.7128, -74.0060, -4, ("65.112", "72.229", "98.116", "108.41", "173.56")),
    "berlin": Place("DE", 52.5200, 13.4050, 2, ("84.128", "84.155", "87.123", "91.64", "93.192")),
    "dublin": Place("IE", 53.3498, -6.2603, 1, ("86.40", "86.43", "89.100", "89.101", "109.76")),
    "singapore": Place("SG", 1.3521, 103.8198, 8, ("116.86", "116.87", "118.200", "118.201", "101.127")),
}
OFFICE_OF_COUNTRY = {"US": "new-york", "DE": "berlin", "IE": "dublin", "SG": "singapore"}
ADMINS = {"new-york": "alice", "berlin": "bob", "dublin": "carol", "singapore": "deepa"}
FOREIGN = {
    "sao-paulo": ForeignPlace("BR", -23.5505, -46.6333, ("177.12", "189.40", "200.158")),
    "bucharest": ForeignPlace("RO", 44.4268, 26.1025, ("86.120", "5.13", "79.112")),
    "lagos": ForeignPlace("NG", 6.5244, 3.3792, ("105.112", "197.210")),
    "hanoi": ForeignPlace("VN", 21.0278, 105.8342, ("113.160", "14.177")),
    "amsterdam": ForeignPlace("NL", 52.3676, 4.9041, ("185.107", "45.83", "89.248")),
    "johannesburg": ForeignPlace("ZA", -26.2041, 28.0473, ("41.13", "105.224")),
    "mumbai": ForeignPlace("IN", 19.0760, 72.8777, ("49.36", "103.211")),
}
# service name -> traffic pattern ("always", "business" or "batch")
SERVICES = {
    **dict.fromkeys(
        ("payments", "orders", "checkout", "identity", "session", "gateway", "search", "catalog"), "always"
    ),
    **dict.fromkeys(
        ("pricing", "notifications", "inventory", "shipping", "fraud", "loyalty", "media"), "always"
    ),
    **dict.fromkeys(
        ("reporting", "analytics", "crm", "hr-portal", "support", "docs", "payroll", "billing", "ledger"),
        "business",
    ),
    **dict.fromkeys(("backup", "etl", "data-lake", "warehouse", "ml-features", "audit-log"), "batch"),
}
RESTRICTED_SERVICES = frozenset(
    {"payments", "checkout", "identity", "fraud", "payroll", "billing", "ledger", "hr-portal"}
)
ENVIRONMENT_TOKEN = {"production": "prod", "staging": "staging", "development": "dev"}
ROLE_SUFFIXES = ("app", "worker", "api", "consumer", "cron", "sync", "jobs", "reader")
HUMANS = (
    "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "ken", "liam", "maria", "nina",
    "omar", "priya", "raj", "sara", "tom", "uma", "victor", "wei", "xin", "yusuf", "zoe",
)  # fmt: skip
NEWCOMERS = ("kevin", "olivia", "peter", "quinn", "rosa", "steve", "tara", "ursula", "vikram", "wendy")
SDK_AGENTS = (
    "aws-sdk-java/2.20.162 Linux/5.10.205-195.807.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.9+8-LTS "
    "Java/17.0.9 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-java/2.21.29 Linux/6.1.66-91.160.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/21.0.1+12-LTS "
    "Java/21.0.1 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/standard",
    "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#5.10.205-195.807.amzn2.x86_64 md/arch#x86_64 "
    "lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.0",
    "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#5.15.0-1051-aws md/arch#x86_64 "
    "lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.31.57",
    "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOOS#linux md/GOARCH#amd64 api/kms#1.27.5",
    "aws-sdk-js/3.474.0 ua/2.0 os/linux#5.10.201-191.748.amzn2.x86_64 lang/js md/nodejs#20.10.0 "
    "api/kms#3.474.0",
    "aws-sdk-dotnet-coreclr/3.7.300.20 aws-sdk-dotnet-core/3.7.301.2 .NET_Core/6.0.25 OS/Linux_5.10.201 "
    "ClientAsync",
)
HUMAN_AGENTS = (
    "aws-cli/2.15.4 Python/3.11.6 Darwin/23.2.0 exe/x86_64 prompt/off",
    "aws-cli/2.13.25 Python/3.11.5 Linux/6.5.0-14-generic exe/x86_64.ubuntu.22 prompt/off",
    "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/macos#23.2.0 md/arch#arm64 lang/python#3.12.0 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
)
LAMBDA_AGENT = (
    "Boto3/1.34.42 md/Botocore#1.34.42 ua/2.0 os/linux#5.10.209-219.827.amzn2.x86_64 md/arch#x86_64 "
    "lang/python#3.12.1 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy "
    "Botocore/1.34.42"
)
# operation mixes: share of each KMS operation
APP_OPERATIONS = {
    "always": {"Decrypt": 0.56, "GenerateDataKey": 0.24, "Encrypt": 0.14, "DescribeKey": 0.06},
    "business": {"Decrypt": 0.62, "GenerateDataKey": 0.16, "Encrypt": 0.16, "DescribeKey": 0.06},
    "batch": {"GenerateDataKey": 0.36, "Encrypt": 0.26, "Decrypt": 0.32, "DescribeKey": 0.06},
}
HUMAN_OPERATIONS = {"Decrypt": 0.6, "Encrypt": 0.22, "DescribeKey": 0.12, "GenerateDataKey": 0.06}
AWS_SERVICES = {
    "dynamodb.amazonaws.com": {"Decrypt": 0.55, "GenerateDataKey": 0.15, "DescribeKey": 0.3},
    "s3.amazonaws.com": {"GenerateDataKey": 0.55, "Decrypt": 0.45},
    "rds.amazonaws.com": {"Decrypt": 0.5, "GenerateDataKeyWithoutPlaintext": 0.2, "DescribeKey": 0.3},
    "secretsmanager.amazonaws.com": {"Decrypt": 0.7, "GenerateDataKey": 0.3},
    "lambda.amazonaws.com": {"Decrypt": 1.0},
}
ADMIN_READS = ("DescribeKey", "GetKeyPolicy", "ListResourceTags", "ListAliases", "GetKeyRotationStatus")
