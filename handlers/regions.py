"""AWS region display names and console addresses.

CloudWatch alarm notifications name their region for people ("US East (N.
Virginia)", "EU (Ireland)", and in messages from before about 2017
"US - N. Virginia"); opsbot keys everything on region codes. The canonical
names are those of https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html
(the same descriptions botocore ships in ``endpoints.json``); the older
"EU (...)", "São Paulo", "Osaka-Local", "AWS GovCloud (US)" and "X - Y"
spellings are kept because alarms that still use them keep arriving.
"""

from __future__ import annotations

from urllib.parse import quote

from handlers.base import region_code

REGION_NAMES: dict[str, str] = {
    # Commercial regions (partition "aws").
    "US East (N. Virginia)": "us-east-1",
    "US East (Ohio)": "us-east-2",
    "US West (N. California)": "us-west-1",
    "US West (Oregon)": "us-west-2",
    "Africa (Cape Town)": "af-south-1",
    "Asia Pacific (Hong Kong)": "ap-east-1",
    "Asia Pacific (Taipei)": "ap-east-2",
    "Asia Pacific (Tokyo)": "ap-northeast-1",
    "Asia Pacific (Seoul)": "ap-northeast-2",
    "Asia Pacific (Osaka)": "ap-northeast-3",
    "Asia Pacific (Osaka-Local)": "ap-northeast-3",
    "Asia Pacific (Mumbai)": "ap-south-1",
    "Asia Pacific (Hyderabad)": "ap-south-2",
    "Asia Pacific (Singapore)": "ap-southeast-1",
    "Asia Pacific (Sydney)": "ap-southeast-2",
    "Asia Pacific (Jakarta)": "ap-southeast-3",
    "Asia Pacific (Melbourne)": "ap-southeast-4",
    "Asia Pacific (Malaysia)": "ap-southeast-5",
    "Asia Pacific (New Zealand)": "ap-southeast-6",
    "Asia Pacific (Thailand)": "ap-southeast-7",
    "Canada (Central)": "ca-central-1",
    "Canada West (Calgary)": "ca-west-1",
    "Europe (Frankfurt)": "eu-central-1",
    "EU (Frankfurt)": "eu-central-1",
    "Europe (Zurich)": "eu-central-2",
    "EU (Zurich)": "eu-central-2",
    "Europe (Stockholm)": "eu-north-1",
    "EU (Stockholm)": "eu-north-1",
    "Europe (Milan)": "eu-south-1",
    "EU (Milan)": "eu-south-1",
    "Europe (Spain)": "eu-south-2",
    "EU (Spain)": "eu-south-2",
    "Europe (Ireland)": "eu-west-1",
    "EU (Ireland)": "eu-west-1",
    "Europe (London)": "eu-west-2",
    "EU (London)": "eu-west-2",
    "Europe (Paris)": "eu-west-3",
    "EU (Paris)": "eu-west-3",
    "Israel (Tel Aviv)": "il-central-1",
    "Middle East (UAE)": "me-central-1",
    "Middle East (Bahrain)": "me-south-1",
    "Mexico (Central)": "mx-central-1",
    "South America (Sao Paulo)": "sa-east-1",
    "South America (São Paulo)": "sa-east-1",
    # AWS GovCloud (partition "aws-us-gov").
    "AWS GovCloud (US-West)": "us-gov-west-1",
    "AWS GovCloud (US)": "us-gov-west-1",
    "AWS GovCloud (US-East)": "us-gov-east-1",
    # China (partition "aws-cn").
    "China (Beijing)": "cn-north-1",
    "China (Ningxia)": "cn-northwest-1",
    # The "Area - City" form of alarm notifications sent before about 2017.
    "US - N. Virginia": "us-east-1",
    "US - N. California": "us-west-1",
    "US - Oregon": "us-west-2",
    "EU - Ireland": "eu-west-1",
    "Asia Pacific - Singapore": "ap-southeast-1",
    "Asia Pacific - Sydney": "ap-southeast-2",
    "Asia Pacific - Tokyo": "ap-northeast-1",
    "South America - Sao Paulo": "sa-east-1",
}

CONSOLE_HOSTS = {
    "cn-": "console.amazonaws.cn",
    "us-gov-": "console.amazonaws-us-gov.com",
}


def normalise_name(name: str) -> str:
    """Return a display name folded for lookup: case and spacing ignored."""
    return " ".join(name.split()).casefold()


REGION_LOOKUP = {normalise_name(name): code for name, code in REGION_NAMES.items()}


def region_from_name(name: str) -> str:
    """Return the region code for a display name (or a code given as is), else ""."""
    return REGION_LOOKUP.get(normalise_name(name), "") or region_code(name.strip())


def console_url(region: str, path_and_fragment: str) -> str:
    """Return the console address of a page in a region, in that region's partition."""
    host = next(
        (host for prefix, host in CONSOLE_HOSTS.items() if region.startswith(prefix)),
        f"{region}.console.aws.amazon.com",
    )
    return f"https://{host}/{path_and_fragment}"


def alarm_console_url(region: str, alarm_name: str) -> str:
    """Return the CloudWatch console address of an alarm, or "" without a region."""
    if not region or not alarm_name:
        return ""
    fragment = f"alarmsV2:alarm/{quote(alarm_name, safe='')}"
    return console_url(region, f"cloudwatch/home?region={region}#{fragment}")
