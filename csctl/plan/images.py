"""Jobs' image URLs (Cloud Scheduler's ``VMLoc``) turned into the images clouds have.

A ``VMLoc`` names where an image can be downloaded, not an image a cloud knows. Each
cloud is asked once per cycle for the image registered for that URL (by name, or by
the ``csctl-source-url`` property or tag); this module decides, from those answers,
which clouds keep a requirement and which jobs are rejected, and says how to register
the image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from csctl.model import TAG_SOURCE_URL, JobProblem
from csctl.plan.demand import Demand, Rejected, VMRequirement
from csctl.plan.text import shown

# scheme://...: what VMLoc holds; VMAMI names (ami-..., image names, uuids) never look so
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
LOOKUP_FAILED = object()  # the cloud could not be asked this cycle


def is_image_url(image: str) -> bool:
    """Whether a job's image is a URL (a ``VMLoc``) rather than an image id or name."""
    return _URL.fullmatch(image) is not None


def image_urls(demand: Demand) -> set[tuple[str, str]]:
    """Every (cloud, URL) the demand's requirements would boot from: the look-ups to make."""
    return {
        (cloud, image)
        for req in demand.requirements
        for cloud, image in req.images.items()
        if cloud in req.clouds and is_image_url(image)
    }


def registration_problem(url: str, clouds: list[str]) -> JobProblem:
    """The reason a job whose VMLoc no cloud has registered is rejected, and the remedy."""
    return JobProblem(
        "VMLoc",
        f"no image registered for {shown(url, 120)} on cloud(s) {', '.join(clouds)}: upload it there "
        f"under that name, or set the image property (OpenStack) or tag (EC2) {TAG_SOURCE_URL} to the URL, "
        f"e.g. openstack image set --property {TAG_SOURCE_URL}=URL IMAGE, "
        f"aws ec2 create-tags --resources AMI --tags Key={TAG_SOURCE_URL},Value=URL",
    )


def resolve_images(
    demand: Demand, found: Mapping[tuple[str, str], str | None | object]
) -> tuple[Demand, list[str]]:
    """The demand with each URL replaced by the image its cloud registered for it.

    ``found`` maps (cloud, URL) to the image id, None when the cloud has none, or
    ``LOOKUP_FAILED``. A cloud without the image leaves the requirement; a requirement no
    cloud is left for is rejected with the registration remedy, unless a cloud could not
    be asked (then it waits for a later cycle, with a warning). Returns warnings too.
    """
    requirements: list[VMRequirement] = []
    rejected = list(demand.rejected)
    warnings: list[str] = []
    for req in demand.requirements:
        kept, missing, failed = _clouds_for(req, found)
        if kept:
            images = {c: _image(c, i, found) for c, i in req.images.items() if c in kept}
            requirements.append(replace(req, clouds=kept, images=images))
        elif failed:
            where = ", ".join(failed)
            warnings.append(f"{req.idle_jobs} job(s) wait: their VMLoc image cannot be looked up on {where}")
        else:
            problem = registration_problem(_url_of(req), missing)
            owners = ", ".join(req.owners) or "?"
            rejected.append(Rejected(req.idle_jobs, [], owners, [f"{problem.attribute}: {problem.message}"]))
    resolved = replace(demand, requirements=requirements, rejected=rejected)
    return resolved, warnings


def _clouds_for(
    req: VMRequirement, found: Mapping[tuple[str, str], str | None | object]
) -> tuple[list[str], list[str], list[str]]:
    """The requirement's clouds split into: usable, without the image, not asked."""
    kept: list[str] = []
    missing: list[str] = []
    failed: list[str] = []
    for cloud in req.clouds:
        image = req.images.get(cloud)
        if image is None or not is_image_url(image):
            kept.append(cloud)
            continue
        answer = found.get((cloud, image), LOOKUP_FAILED)
        if answer is LOOKUP_FAILED:
            failed.append(cloud)
        elif answer is None:
            missing.append(cloud)
        else:
            kept.append(cloud)
    return kept, missing, failed


def _image(cloud: str, image: str, found: Mapping[tuple[str, str], str | None | object]) -> str:
    return str(found[(cloud, image)]) if is_image_url(image) else image


def _url_of(req: VMRequirement) -> str:
    return next((i for i in req.images.values() if is_image_url(i)), "")
