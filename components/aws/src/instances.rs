//! EC2 instances: create (AMI lookup, key pair, security group, RunInstances),
//! read, delete with what was created for them, list by tag.
//!
//! Every key pair and security group is tagged with the deployment by the
//! call that creates it, so that nothing exists, even for a moment, that
//! cannot be found again by the deployment alone (see [`crate::leftovers`]).

use base64::Engine as _;
use provider_sdk::types::{
    DeleteStatus, Instance, InstanceQuery, InstanceRef, InstanceSpec, InstanceState, Protocol,
    ResourceRef,
};
use provider_sdk::{Error, log, settings, time};

use crate::ec2::{self, Node, Params, child, find, items, text};
use crate::leftovers::{self, deployment_of};
use crate::regions;

/// Resource kind of a security group we created.
pub const KIND_SG: &str = "security-group";
/// Resource kind of a key pair we imported.
pub const KIND_KEY: &str = "key-pair";
/// Tag carrying the idempotency key (lets a retried create find its instance
/// even where `ClientToken` is not honoured, e.g. moto).
pub const IDEMPOTENCY_TAG: &str = "bpr-idempotency-key";
/// States of instances that still exist (for lookups and listings).
const LIVE_STATES: &[&str] = &["pending", "running", "shutting-down", "stopping", "stopped"];

/// `compute.create-instance`.
pub fn create(spec: &InstanceSpec) -> Result<Instance, Error> {
    ec2::check_region(&spec.region)?;
    regions::check_known(&spec.region)?;
    check_name("deployment id", &spec.deployment_id)?;
    if spec.instance_type.trim().is_empty() {
        return Err(Error::InvalidRequest("instance type is empty".into()));
    }
    let token = client_token(&spec.idempotency_key);

    // A retried create returns what the first attempt made.
    if let Some(existing) = find_by_tag(&spec.region, IDEMPOTENCY_TAG, &token)? {
        log::info(&format!(
            "create retried: instance {} already exists",
            existing.id
        ));
        return Ok(existing);
    }

    // Everything referenced by a create that does not exist is a bad request.
    let as_invalid = |e: Error| match e {
        Error::NotFound(m) => Error::InvalidRequest(m),
        other => other,
    };
    let arch = instance_arch(&spec.region, &spec.instance_type).map_err(as_invalid)?;
    let image = resolve_image(&spec.region, spec.image.as_deref(), &arch).map_err(as_invalid)?;

    let mut created: Vec<ResourceRef> = Vec::new();
    let result = (|| {
        let key_name = match spec.ssh_public_keys.first() {
            Some(key) => {
                if spec.ssh_public_keys.len() > 1 {
                    log::warn(
                        "EC2 takes one key pair per instance; only the first SSH key is installed",
                    );
                }
                let name = import_key(spec, key)?;
                created.push(ResourceRef {
                    kind: KIND_KEY.into(),
                    id: name.clone(),
                });
                Some(name)
            }
            None => None,
        };
        let sg = security_group(spec)?;
        created.push(ResourceRef {
            kind: KIND_SG.into(),
            id: sg.clone(),
        });
        run_instance(spec, &token, &image, key_name.as_deref(), &sg)
    })();
    match result {
        Ok(mut inst) => {
            merge_resources(&mut inst.resources, &created);
            Ok(inst)
        }
        Err(e) => {
            // Nothing runs: remove what this attempt made, unless another
            // instance of the deployment shares it (the group, the key).
            let cleanup = live_of(&spec.region, &spec.deployment_id)
                .and_then(|live| leftovers::delete_unused(&live, &spec.region, &created));
            if let Err(ce) = cleanup {
                log::warn(&format!(
                    "cleanup after a failed create left resources of {} (a delete-instance with its label removes them): {}",
                    spec.deployment_id,
                    provider_sdk::errors::message(&ce)
                ));
            }
            Err(as_invalid(e))
        }
    }
}

/// `compute.get-instance`.
pub fn get(target: &InstanceRef) -> Result<Instance, Error> {
    if target.id.is_empty() || !regions::is_known(&target.region) {
        return Err(Error::NotFound(format!(
            "no EC2 instance `{}` in `{}`",
            target.id, target.region
        )));
    }
    let mut inst = describe_one(&target.region, &target.id)?.ok_or_else(|| {
        Error::NotFound(format!(
            "EC2 instance {} not found in {}",
            target.id, target.region
        ))
    })?;
    merge_resources(&mut inst.resources, &target.resources);
    Ok(inst)
}

/// `compute.delete-instance`: terminate the instance, then remove the key
/// pair and security group of its deployment that no other live instance of
/// it uses. With an empty `id`, everything the deployment left in the region
/// (instances included). Nothing can exist in a region this provider does
/// not know: that is `deleted`.
pub fn delete(target: &InstanceRef) -> Result<DeleteStatus, Error> {
    let region = &target.region;
    ec2::check_region(region)?;
    if !regions::is_known(region) {
        return Ok(DeleteStatus::Deleted);
    }
    let deployment = deployment_of(&target.labels);
    if target.id.is_empty() {
        let Some(dep) = deployment else {
            return Err(Error::InvalidRequest(
                "delete-instance needs an instance id or the bpr-deployment label".into(),
            ));
        };
        return leftovers::delete(region, dep, true);
    }
    let mut resources = target.resources.clone();
    let current = describe_one(region, &target.id)?;
    if let Some(inst) = &current {
        merge_resources(&mut resources, &inst.resources);
        match inst.state {
            InstanceState::Terminated => {}
            InstanceState::Terminating => return Ok(DeleteStatus::InProgress),
            _ => {
                let mut p = Params::default();
                p.add("InstanceId.1", target.id.as_str());
                match ec2::call(region, "TerminateInstances", &p.0) {
                    Ok(_) | Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                return Ok(DeleteStatus::InProgress);
            }
        }
    }
    // The instance is gone.
    match deployment {
        Some(dep) => leftovers::delete(region, dep, false),
        // A ref without the label (an older host): what it names.
        None => {
            let mut pending = false;
            for r in &resources {
                pending |= !leftovers::delete_resource(region, r)?;
            }
            Ok(if pending {
                DeleteStatus::InProgress
            } else {
                DeleteStatus::Deleted
            })
        }
    }
}

/// `compute.list-instances`: instances carrying every label, in the regions asked.
pub fn list(query: &InstanceQuery) -> Result<Vec<Instance>, Error> {
    let regions = if !query.regions.is_empty() {
        query.regions.clone()
    } else {
        let configured = settings::list("regions");
        if configured.is_empty() {
            all_regions()?
        } else {
            configured
        }
    };
    let mut out = Vec::new();
    for region in &regions {
        // Nothing was ever created in a region this provider does not know.
        if !query.regions.is_empty() && !regions::is_known(region) {
            continue;
        }
        let mut p = Params::default();
        let mut n = 1;
        for (k, v) in &query.labels {
            p.filter(n, &format!("tag:{k}"), &[v.as_str()]);
            n += 1;
        }
        p.filter(n, "instance-state-name", LIVE_STATES);
        let found = describe_all(region, p)?;
        // A deployment asked for by name that has instances has no orphans.
        let named = deployment_of(&query.labels).is_some();
        if !named || found.is_empty() {
            out.extend(leftovers::orphaned(region, &query.labels, &found)?);
        }
        out.extend(found);
    }
    Ok(out)
}

/// The live instances of `deployment` in `region`.
pub fn live_of(region: &str, deployment: &str) -> Result<Vec<Instance>, Error> {
    let mut p = Params::default();
    p.filter(
        1,
        &format!("tag:{}", leftovers::DEPLOYMENT_LABEL),
        &[deployment],
    );
    p.filter(2, "instance-state-name", LIVE_STATES);
    describe_all(region, p)
}

/// Regions enabled for the account (`DescribeRegions`, asked in `us-east-1`).
fn all_regions() -> Result<Vec<String>, Error> {
    let home = settings::get_or("home_region", "us-east-1");
    let xml = ec2::call(&home, "DescribeRegions", &[])?;
    let doc = ec2::parse(&xml, "DescribeRegions")?;
    Ok(items(doc.root_element(), "regionInfo")
        .into_iter()
        .filter_map(|i| text(i, "regionName"))
        .collect())
}

/// `ClientToken` (max 64 ASCII characters): the key itself when it fits,
/// else a stable hash of it.
fn client_token(key: &str) -> String {
    if !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_graphic()) {
        key.to_string()
    } else {
        format!(
            "bpr-{:016x}{:016x}",
            fnv1a(key.as_bytes(), 0),
            fnv1a(key.as_bytes(), 1)
        )
    }
}

/// 64-bit FNV-1a with a seed byte (names only, not security).
fn fnv1a(data: &[u8], seed: u8) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed as u64;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn check_name(what: &str, v: &str) -> Result<(), Error> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "{what} `{v}` must be 1-128 characters of [A-Za-z0-9._-]"
        )))
    }
}

/// CPU architecture of an instance type (`DescribeInstanceTypes`).
fn instance_arch(region: &str, instance_type: &str) -> Result<String, Error> {
    let mut p = Params::default();
    p.add("InstanceType.1", instance_type);
    let xml = ec2::call(region, "DescribeInstanceTypes", &p.0)?;
    let doc = ec2::parse(&xml, "DescribeInstanceTypes")?;
    let info = items(doc.root_element(), "instanceTypeSet")
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "instance type `{instance_type}` does not exist in {region}"
            ))
        })?;
    let archs: Vec<String> = child(info, "processorInfo")
        .map(|pi| {
            items(pi, "supportedArchitectures")
                .into_iter()
                .filter_map(|i| i.text().map(|t| t.trim().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Ok(if archs.iter().any(|a| a == "x86_64") || archs.is_empty() {
        "x86_64".into()
    } else {
        archs[0].clone()
    })
}

/// An AMI and its root device name.
struct Image {
    id: String,
    root_device: Option<String>,
}

/// The AMI to boot: the spec's, else the `image` setting, else the newest
/// image of `image_owner` whose name matches `image_name_filter`.
fn resolve_image(region: &str, requested: Option<&str>, arch: &str) -> Result<Image, Error> {
    let pinned = requested
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| settings::get("image"));
    let mut p = Params::default();
    let what = match &pinned {
        Some(id) => {
            p.add("ImageId.1", id.as_str());
            format!("AMI `{id}`")
        }
        None => {
            let owner = settings::get_or("image_owner", "amazon");
            let default_filter = if arch == "arm64" {
                "al2023-ami-2023.*-arm64"
            } else {
                "al2023-ami-2023.*-x86_64"
            };
            let name = settings::get_or("image_name_filter", default_filter);
            p.add("Owner.1", owner.as_str());
            p.filter(1, "name", &[name.as_str()]);
            p.filter(2, "architecture", &[arch]);
            p.filter(3, "state", &["available"]);
            format!(
                "an image of owner `{owner}` named `{name}` for {arch} (settings `image_owner`, `image_name_filter`, or pin one with `image`)"
            )
        }
    };
    let xml = ec2::call(region, "DescribeImages", &p.0)?;
    let doc = ec2::parse(&xml, "DescribeImages")?;
    let mut images: Vec<(String, String, String, Option<String>)> =
        items(doc.root_element(), "imagesSet")
            .into_iter()
            .filter_map(|i| {
                Some((
                    text(i, "creationDate").unwrap_or_default(),
                    text(i, "name").unwrap_or_default(),
                    text(i, "imageId")?,
                    text(i, "rootDeviceName"),
                ))
            })
            .collect();
    // Newest first; ISO dates sort as strings, names break ties.
    images.sort();
    let (_, _, id, root_device) = images
        .pop()
        .ok_or_else(|| Error::InvalidRequest(format!("no AMI found in {region}: {what}")))?;
    Ok(Image { id, root_device })
}

/// Import the operator's key as `bpr-<deployment>-<hash>`; an existing pair of
/// that name (a retry) is reused.
fn import_key(spec: &InstanceSpec, key: &str) -> Result<String, Error> {
    let key = key.trim();
    let name = leftovers::key_name(&spec.deployment_id, fnv1a(key.as_bytes(), 0) as u32);
    let mut p = Params::default();
    p.add("KeyName", name.as_str());
    p.add(
        "PublicKeyMaterial",
        base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
    );
    add_tags(&mut p, 1, "key-pair", spec, None);
    match ec2::call(&spec.region, "ImportKeyPair", &p.0) {
        Ok(_) => Ok(name),
        Err(Error::InvalidRequest(m)) | Err(Error::Other(m))
            if m.contains("InvalidKeyPair.Duplicate") =>
        {
            Ok(name)
        }
        Err(Error::InvalidRequest(m)) => Err(Error::InvalidRequest(format!(
            "{m} (the SSH public key must be an OpenSSH rsa or ed25519 line)"
        ))),
        Err(e) => Err(e),
    }
}

/// Create (or find, on a retry) the deployment's security group and open
/// exactly the requested ports. Returns its id.
fn security_group(spec: &InstanceSpec) -> Result<String, Error> {
    let name = leftovers::group_name(&spec.deployment_id);
    let mut p = Params::default();
    p.add("GroupName", name.as_str());
    p.add(
        "GroupDescription",
        format!("bpr deployment {}", spec.deployment_id),
    );
    if let Some(vpc) = settings::get("vpc_id") {
        p.add("VpcId", vpc);
    }
    add_tags(&mut p, 1, "security-group", spec, None);
    let id = match ec2::call(&spec.region, "CreateSecurityGroup", &p.0) {
        Ok(xml) => {
            let doc = ec2::parse(&xml, "CreateSecurityGroup")?;
            text(doc.root_element(), "groupId").ok_or_else(|| {
                Error::Other("EC2 CreateSecurityGroup answered without a groupId".into())
            })?
        }
        Err(Error::InvalidRequest(m)) | Err(Error::Other(m))
            if m.contains("InvalidGroup.Duplicate") =>
        {
            let mut q = Params::default();
            q.filter(1, "group-name", &[name.as_str()]);
            let xml = ec2::call(&spec.region, "DescribeSecurityGroups", &q.0)?;
            let doc = ec2::parse(&xml, "DescribeSecurityGroups")?;
            items(doc.root_element(), "securityGroupInfo")
                .into_iter()
                .find_map(|g| text(g, "groupId"))
                .ok_or_else(|| {
                    Error::Other(format!("security group {name} exists but cannot be read"))
                })?
        }
        Err(e) => return Err(e),
    };
    if spec.open_ports.is_empty() {
        return Ok(id);
    }
    let mut a = Params::default();
    a.add("GroupId", id.as_str());
    for (i, rule) in spec.open_ports.iter().enumerate() {
        let n = i + 1;
        let proto = match rule.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let end = rule.end_port.unwrap_or(rule.port);
        if end < rule.port {
            return Err(Error::InvalidRequest(format!(
                "port range {}-{end} ends before it starts",
                rule.port
            )));
        }
        a.add(format!("IpPermissions.{n}.IpProtocol"), proto);
        a.add(format!("IpPermissions.{n}.FromPort"), rule.port.to_string());
        a.add(format!("IpPermissions.{n}.ToPort"), end.to_string());
        let cidrs: Vec<&str> = if rule.source_cidrs.is_empty() {
            vec!["0.0.0.0/0"]
        } else {
            rule.source_cidrs.iter().map(|s| s.as_str()).collect()
        };
        let (mut v4, mut v6) = (0, 0);
        for c in cidrs {
            if c.contains(':') {
                v6 += 1;
                a.add(format!("IpPermissions.{n}.Ipv6Ranges.{v6}.CidrIpv6"), c);
            } else {
                v4 += 1;
                a.add(format!("IpPermissions.{n}.IpRanges.{v4}.CidrIp"), c);
            }
        }
    }
    match ec2::call(&spec.region, "AuthorizeSecurityGroupIngress", &a.0) {
        Ok(_) => Ok(id),
        // A retry after the rules were added.
        Err(Error::InvalidRequest(m)) | Err(Error::Other(m))
            if m.contains("InvalidPermission.Duplicate") =>
        {
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// `TagSpecification.<n>` for `resource_type` with the deployment tag, the
/// labels, a Name and (for instances) the idempotency tag.
fn add_tags(
    p: &mut Params,
    n: usize,
    resource_type: &str,
    spec: &InstanceSpec,
    token: Option<&str>,
) {
    let mut tags: Vec<(String, String)> = vec![
        ("Name".into(), format!("bpr-{}", spec.deployment_id)),
        ("bpr-deployment".into(), spec.deployment_id.clone()),
    ];
    for (k, v) in &spec.labels {
        if !tags.iter().any(|(tk, _)| tk == k) {
            tags.push((k.clone(), v.clone()));
        }
    }
    if let Some(t) = token {
        tags.push((IDEMPOTENCY_TAG.into(), t.into()));
    }
    p.add(format!("TagSpecification.{n}.ResourceType"), resource_type);
    for (i, (k, v)) in tags.iter().enumerate() {
        p.add(
            format!("TagSpecification.{n}.Tag.{}.Key", i + 1),
            k.as_str(),
        );
        p.add(
            format!("TagSpecification.{n}.Tag.{}.Value", i + 1),
            v.as_str(),
        );
    }
}

fn run_instance(
    spec: &InstanceSpec,
    token: &str,
    image: &Image,
    key_name: Option<&str>,
    sg: &str,
) -> Result<Instance, Error> {
    let mut p = Params::default();
    p.add("ImageId", image.id.as_str())
        .add("InstanceType", spec.instance_type.as_str())
        .add("MinCount", "1")
        .add("MaxCount", "1")
        .add("ClientToken", token)
        .add("SecurityGroupId.1", sg);
    if let Some(k) = key_name {
        p.add("KeyName", k);
    }
    if let Some(ud) = &spec.user_data {
        p.add(
            "UserData",
            base64::engine::general_purpose::STANDARD.encode(ud.as_bytes()),
        );
    }
    if let Some(subnet) = settings::get("subnet_id") {
        p.add("SubnetId", subnet);
    }
    if let Some(zone) = &spec.zone {
        p.add("Placement.AvailabilityZone", zone.as_str());
    }
    if spec.spot {
        p.add("InstanceMarketOptions.MarketType", "spot")
            .add(
                "InstanceMarketOptions.SpotOptions.SpotInstanceType",
                "one-time",
            )
            .add(
                "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior",
                "terminate",
            );
    }
    if spec.disk_gib > 0 {
        let dev = image.root_device.as_deref().unwrap_or("/dev/xvda");
        p.add("BlockDeviceMapping.1.DeviceName", dev)
            .add(
                "BlockDeviceMapping.1.Ebs.VolumeSize",
                spec.disk_gib.to_string(),
            )
            .add("BlockDeviceMapping.1.Ebs.VolumeType", "gp3")
            .add("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
    }
    add_tags(&mut p, 1, "instance", spec, Some(token));
    add_tags(&mut p, 2, "volume", spec, None);
    let xml = ec2::call(&spec.region, "RunInstances", &p.0)?;
    let doc = ec2::parse(&xml, "RunInstances")?;
    let node = items(doc.root_element(), "instancesSet")
        .into_iter()
        .next()
        .ok_or_else(|| Error::Other("EC2 RunInstances answered without an instance".into()))?;
    Ok(parse_instance(node, &spec.region))
}

/// The live instance tagged `key=value` in `region`, if any.
fn find_by_tag(region: &str, key: &str, value: &str) -> Result<Option<Instance>, Error> {
    let mut p = Params::default();
    p.filter(1, &format!("tag:{key}"), &[value]);
    p.filter(2, "instance-state-name", LIVE_STATES);
    Ok(describe_all(region, p)?.into_iter().next())
}

/// One instance by id; `None` when EC2 does not know it.
fn describe_one(region: &str, id: &str) -> Result<Option<Instance>, Error> {
    let mut p = Params::default();
    p.add("InstanceId.1", id);
    match describe_all(region, p) {
        Ok(v) => Ok(v.into_iter().next()),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `DescribeInstances` over every page.
fn describe_all(region: &str, params: Params) -> Result<Vec<Instance>, Error> {
    let with_ids = params.0.iter().any(|(k, _)| k.starts_with("InstanceId."));
    provider_sdk::paginate::collect(100, |cursor| {
        let mut p = params.0.clone();
        if !with_ids {
            p.push(("MaxResults".into(), "500".into()));
        }
        if let Some(c) = cursor {
            p.push(("NextToken".into(), c.to_string()));
        }
        let xml = ec2::call(region, "DescribeInstances", &p)?;
        let doc = ec2::parse(&xml, "DescribeInstances")?;
        let root = doc.root_element();
        let mut page = Vec::new();
        for reservation in items(root, "reservationSet") {
            for inst in items(reservation, "instancesSet") {
                page.push(parse_instance(inst, region));
            }
        }
        Ok((page, text(root, "nextToken")))
    })
}

/// An `instancesSet/item` as a WIT instance.
fn parse_instance(node: Node<'_, '_>, region: &str) -> Instance {
    let state_name = child(node, "instanceState")
        .and_then(|s| text(s, "name"))
        .unwrap_or_default();
    let state = match state_name.as_str() {
        "pending" => InstanceState::Pending,
        "running" => InstanceState::Running,
        "stopping" => InstanceState::Stopping,
        "stopped" => InstanceState::Stopped,
        "shutting-down" => InstanceState::Terminating,
        "terminated" => InstanceState::Terminated,
        _ => InstanceState::Unknown,
    };
    let mut labels = Vec::new();
    for tag in items(node, "tagSet") {
        if let (Some(k), v) = (text(tag, "key"), text(tag, "value").unwrap_or_default()) {
            if k == "Name" || k == IDEMPOTENCY_TAG || k.starts_with("aws:") {
                continue;
            }
            labels.push((k, v));
        }
    }
    let mut resources = Vec::new();
    for g in items(node, "groupSet") {
        if let (Some(id), Some(name)) = (text(g, "groupId"), text(g, "groupName"))
            && name.starts_with("bpr-")
        {
            resources.push(ResourceRef {
                kind: KIND_SG.into(),
                id,
            });
        }
    }
    if let Some(k) = text(node, "keyName").filter(|k| k.starts_with("bpr-")) {
        resources.push(ResourceRef {
            kind: KIND_KEY.into(),
            id: k,
        });
    }
    let detail = child(node, "stateReason")
        .and_then(|r| text(r, "message"))
        .or_else(|| text(node, "reason"));
    Instance {
        id: text(node, "instanceId").unwrap_or_default(),
        region: region.to_string(),
        zone: child(node, "placement").and_then(|p| text(p, "availabilityZone")),
        instance_type: text(node, "instanceType").unwrap_or_default(),
        state,
        public_ipv4: text(node, "ipAddress"),
        private_ipv4: text(node, "privateIpAddress"),
        public_ipv6: text(node, "ipv6Address").or_else(|| {
            find(node, "ipv6Address").and_then(|n| n.text().map(|t| t.trim().to_string()))
        }),
        spot: text(node, "instanceLifecycle").as_deref() == Some("spot"),
        labels,
        resources,
        created_at: text(node, "launchTime").and_then(|t| time::parse_rfc3339(&t)),
        detail,
    }
}

/// Add the refs of `more` that `into` does not have yet.
fn merge_resources(into: &mut Vec<ResourceRef>, more: &[ResourceRef]) {
    for r in more {
        if !into.iter().any(|x| x.kind == r.kind && x.id == r.id) {
            into.push(r.clone());
        }
    }
}
