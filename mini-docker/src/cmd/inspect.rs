//! `mini-docker inspect`: low-level JSON in docker's shape, for containers (State, Config,
//! HostConfig, Mounts, NetworkSettings), images and volumes.
use std::path::Path;

use clap::Args;
use serde_json::{Value, json};

use crate::record::{Config, Container, MountSpec, MountType, State, Status};
use crate::template::Template;
use crate::{Error, containers, volumes};

/// `inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Only container, image or volume.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Format output using a Go template (`{{.State.Pid}}`, `{{json .Config}}`).
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    /// Display total file sizes if the type is container (`SizeRw`, `SizeRootFs`).
    #[arg(short, long)]
    pub size: bool,
    /// Names or ids.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// A container as docker's inspect shows it (`types.ContainerJSON`), key for key. Keys
/// for what mini-docker does not have (restart policies, SELinux and AppArmor labels,
/// exec sessions the daemon tracks) are there with docker's empty values.
pub fn container_json(root: &Path, c: &Container) -> Result<Value, Error> {
    let cfg = &c.config;
    let state = c.live_state()?;
    let mounts: Vec<Value> = cfg.mounts.iter().map(|m| mount_json(root, m)).collect();
    let h = &cfg.host;
    Ok(json!({
        "Id": cfg.id,
        "Created": cfg.created,
        "Path": cfg.path,
        "Args": cfg.args,
        "State": state_json(&state),
        "Image": cfg.image_id,
        "ResolvConfPath": c.path("init/etc/resolv.conf"),
        "HostnamePath": c.path("init/etc/hostname"),
        "HostsPath": c.path("init/etc/hosts"),
        "LogPath": c.log_path(),
        "Name": format!("/{}", cfg.name),
        "RestartCount": 0,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config_json(cfg),
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": format!("{}:{}", c.path("init").display(),
                    crate::view::image_layers(root, c).unwrap_or_default().iter().rev()
                        .map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")),
                "UpperDir": c.path("upper"),
                "WorkDir": c.path("work"),
                "MergedDir": c.path("merged"),
            },
        },
        "Mounts": mounts,
        "Config": config_json(cfg),
        "NetworkSettings": crate::cmd::network::settings(root, &cfg.id, &h.network_mode),
    }))
}

/// One of `Mounts`: a volume shows its data directory as the source and its name, as
/// docker's local driver does; a bind shows the host path and docker's default
/// propagation.
fn mount_json(root: &Path, m: &MountSpec) -> Value {
    let source = if m.kind == MountType::Volume {
        volumes::data_dir(root, &m.source).display().to_string()
    } else {
        m.source.clone()
    };
    let mut v = json!({
        "Type": m.kind.as_str(),
        "Source": source,
        "Destination": m.destination,
        "Mode": if m.kind == MountType::Bind { "" } else { "z" },
        "RW": !m.read_only,
        "Propagation": if m.kind == MountType::Bind { "rprivate" } else { "" },
    });
    if m.kind == MountType::Volume {
        v["Name"] = json!(m.source);
        v["Driver"] = json!("local");
    }
    v
}

/// `State`: a paused container counts as running, as in docker, and a time not yet
/// reached is Go's zero time.
fn state_json(state: &State) -> Value {
    json!({
        "Status": state.status.as_str(),
        "Running": matches!(state.status, Status::Running | Status::Paused),
        "Paused": state.status == Status::Paused,
        "Restarting": false,
        "OOMKilled": state.oom_killed,
        "Dead": false,
        "Pid": state.pid,
        "ExitCode": state.exit_code,
        "Error": state.error,
        "StartedAt": if state.started_at.is_empty() { "0001-01-01T00:00:00Z".to_string() } else { state.started_at.clone() },
        "FinishedAt": if state.finished_at.is_empty() { "0001-01-01T00:00:00Z".to_string() } else { state.finished_at.clone() },
    })
}

/// `HostConfig` (docker's `container.HostConfig`): the flags that shape the container's
/// sandbox, with docker's defaults spelled as docker spells them (`private` IPC, a null
/// pids limit, null for a list never given and `[]` for one the CLI always sends).
fn host_config_json(cfg: &Config) -> Value {
    let h = &cfg.host;
    // `-v`'s binds and named volumes, as docker keeps them (`SOURCE:DEST[:ro]`).
    let binds: Vec<String> = cfg
        .mounts
        .iter()
        .filter(|m| m.kind != MountType::Tmpfs && !cfg.anonymous_volumes.contains(&m.source))
        .map(|m| {
            format!(
                "{}:{}{}",
                m.source,
                m.destination,
                if m.read_only { ":ro" } else { "" }
            )
        })
        .collect();
    let files = crate::security::kernel_files(h).ok();
    let paths = |p: Option<&Vec<std::path::PathBuf>>| match p {
        Some(v) if !v.is_empty() => json!(v),
        _ => Value::Null,
    };
    let mut v = json!({
        "Binds": list_or_null(&binds),
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": h.log_opts},
        "NetworkMode": h.network_mode,
        "PortBindings": port_bindings(&h.port_specs),
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": h.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": list_or_null(&h.volumes_from),
        "CapAdd": list_or_null(&h.cap_add),
        "CapDrop": list_or_null(&h.cap_drop),
        // Chapter 1's containers get a cgroup namespace of their own only on a cgroup v2
        // host, as docker's default (`host` on v1).
        "CgroupnsMode": if h.cgroupns_mode.is_empty() { "host" } else { h.cgroupns_mode.as_str() },
        "Dns": h.dns,
        "DnsOptions": h.dns_options,
        "DnsSearch": h.dns_search,
        "ExtraHosts": list_or_null(&h.extra_hosts),
        "GroupAdd": list_or_null(&h.group_add),
        "IpcMode": if h.ipc_mode.is_empty() { "private" } else { h.ipc_mode.as_str() },
        "Cgroup": "",
        "Links": null,
        "OomScoreAdj": h.oom_score_adj,
        "PidMode": h.pid_mode,
        "Privileged": h.privileged,
        "PublishAllPorts": h.publish_all,
        "ReadonlyRootfs": h.read_only_rootfs,
        "SecurityOpt": list_or_null(&h.security_opt),
        "UTSMode": h.uts_mode,
        "UsernsMode": h.userns_mode,
        "ShmSize": if h.shm_size > 0 { h.shm_size } else { 64 << 20 },
        "Runtime": "mini-docker",
        "ConsoleSize": [0, 0],
        "Isolation": "",
        "CpuShares": h.cpu_shares,
        "Memory": h.memory,
        "NanoCpus": h.nano_cpus,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": list_or_null(&h.blkio.read_bps),
        "BlkioDeviceWriteBps": list_or_null(&h.blkio.write_bps),
        "BlkioDeviceReadIOps": list_or_null(&h.blkio.read_iops),
        "BlkioDeviceWriteIOps": list_or_null(&h.blkio.write_iops),
        "CpuPeriod": h.cpu_period,
        "CpuQuota": h.cpu_quota,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": h.cpuset_cpus,
        "CpusetMems": h.cpuset_mems,
        "Devices": h.devices,
        "DeviceCgroupRules": null,
        "DeviceRequests": null,
        "KernelMemory": 0,
        "KernelMemoryTCP": 0,
        "MemoryReservation": h.memory_reservation,
        // docker fills in the default (swap as large as memory) at create.
        "MemorySwap": if h.memory > 0 && h.memory_swap == 0 { 2 * h.memory as i64 } else { h.memory_swap },
        "MemorySwappiness": h.memory_swappiness,
        "OomKillDisable": h.oom_kill_disable,
        "PidsLimit": if h.pids_limit == 0 { Value::Null } else { json!(h.pids_limit) },
        "Ulimits": list_or_null(&h.ulimits),
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": paths(files.as_ref().map(|f| &f.masked)),
        "ReadonlyPaths": paths(files.as_ref().map(|f| &f.read_only)),
    });
    // docker's `*bool` with omitempty: there only when --init was given.
    if h.init {
        v["Init"] = json!(true);
    }
    // A map with omitempty: there only when --sysctl was given.
    if !h.sysctls.is_empty() {
        v["Sysctls"] = json!(h.sysctls);
    }
    v
}

/// A list docker leaves nil when nothing was given: null, or the list.
fn list_or_null<T: serde::Serialize>(v: &[T]) -> Value {
    if v.is_empty() { Value::Null } else { json!(v) }
}

/// `HostConfig.PortBindings` from `-p`'s specs: `{"80/tcp": [{"HostIp": "", "HostPort":
/// "8080"}]}`, as given (the ports chosen at start are under `NetworkSettings.Ports`).
fn port_bindings(specs: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    for spec in specs {
        for b in ch07_veth_bridge::ports::parse(spec).unwrap_or_default() {
            let entry = out
                .entry(format!("{}/{}", b.container_port, b.proto))
                .or_insert_with(|| json!([]));
            entry.as_array_mut().expect("array").push(json!({
                "HostIp": if b.host_ip.is_unspecified() { String::new() } else { b.host_ip.to_string() },
                "HostPort": if b.host_port == 0 { String::new() } else { b.host_port.to_string() },
            }));
        }
    }
    Value::Object(out)
}

/// `Config` (docker's `container.Config`): what the process runs as, the image's
/// defaults merged with the flags at create; no entrypoint is null, as in docker, and the
/// image's own working directory only if it set one.
fn config_json(cfg: &Config) -> Value {
    let exposed: serde_json::Map<String, Value> = cfg
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), json!({})))
        .collect();
    let volumes: serde_json::Map<String, Value> = cfg
        .mounts
        .iter()
        .filter(|m| m.kind == MountType::Volume && cfg.anonymous_volumes.contains(&m.source))
        .map(|m| (m.destination.clone(), json!({})))
        .collect();
    let mut v = json!({
        "Hostname": cfg.hostname,
        "Domainname": cfg.domainname,
        "User": cfg.user,
        "AttachStdin": cfg.open_stdin,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": cfg.tty,
        "OpenStdin": cfg.open_stdin,
        "StdinOnce": cfg.open_stdin,
        "Env": cfg.env,
        "Cmd": cfg.cmd,
        "Image": cfg.image,
        "Volumes": if volumes.is_empty() { Value::Null } else { Value::Object(volumes) },
        "WorkingDir": if cfg.working_dir == "/" { "" } else { cfg.working_dir.as_str() },
        "Entrypoint": if cfg.entrypoint.is_empty() { Value::Null } else { json!(cfg.entrypoint) },
        "OnBuild": null,
        "Labels": cfg.labels,
    });
    let obj = v.as_object_mut().expect("object");
    if !exposed.is_empty() {
        obj.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    if let Some(t) = cfg.stop_timeout {
        obj.insert("StopTimeout".into(), json!(t));
    }
    // docker keeps StopSignal only when the image or --stop-signal set one.
    if !cfg.stop_signal.is_empty() && cfg.stop_signal != "SIGTERM" {
        obj.insert("StopSignal".into(), json!(cfg.stop_signal));
    }
    v
}

/// An image as docker's `image inspect` shows it (`types.ImageInspect`): the OCI
/// config's fields under docker's names, the container config docker keeps for a built
/// image, the layers' diff IDs under `RootFS`, and the OCI manifest it is stored as under
/// `Descriptor` (docker 25's key for it). Chapter 5's own `inspect` shows the store's view
/// (manifest, blobs) instead.
pub fn image_json(
    store: &ch05_image_pull::store::Store,
    img: &ch05_image_pull::store::Image,
    config_bytes: &[u8],
) -> Value {
    let config: Value = serde_json::from_slice(config_bytes).unwrap_or(Value::Null);
    let familiar = |name: &String| {
        ch05_image_pull::reference::Reference::parse(name)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| name.clone())
    };
    let tags: Vec<String> = img
        .references
        .iter()
        .filter(|r| !r.contains('@'))
        .map(familiar)
        .collect();
    let digests: Vec<String> = img.repo_digests.iter().map(familiar).collect();
    // overlay2's view of an image: the top layer is UpperDir, the rest LowerDir, top first.
    let mut dirs: Vec<String> = img
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_path(&l.diff_id).display().to_string())
        .collect();
    let mut data = serde_json::Map::new();
    if !dirs.is_empty() {
        data.insert("UpperDir".into(), json!(dirs.remove(0)));
    }
    if !dirs.is_empty() {
        data.insert("LowerDir".into(), json!(dirs.join(":")));
    }
    json!({
        "Id": img.config_digest.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        // Set by commit, as docker's (its image config's `parent`).
        "Parent": config["parent"].as_str().unwrap_or(""),
        "Comment": config["comment"].as_str().unwrap_or(""),
        "Created": config["created"].as_str().unwrap_or("0001-01-01T00:00:00Z"),
        "Container": "",
        "ContainerConfig": docker_config(&config["container_config"]),
        "DockerVersion": config["docker_version"].as_str().unwrap_or(""),
        "Author": config["author"].as_str().unwrap_or(""),
        "Config": docker_config(&config["config"]),
        "Architecture": config["architecture"],
        "Os": config["os"],
        "Size": img.size,
        "VirtualSize": img.size,
        "GraphDriver": { "Data": data, "Name": "overlay2" },
        "RootFS": { "Type": "layers", "Layers": config["rootfs"]["diff_ids"] },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        // The OCI manifest this image is stored as, under the key docker 25 uses for it.
        "Descriptor": {
            "mediaType": img.manifest_media_type,
            "digest": img.manifest_digest.to_string(),
            "size": store.read_blob(&img.manifest_digest).map(|b| b.len()).unwrap_or(0),
        },
    })
}

/// An image config's `config` in docker's `container.Config` shape: every field docker
/// always prints, null where unset, and the `omitempty` ones only when present.
fn docker_config(c: &Value) -> Value {
    let or_null = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let or_empty = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut v = serde_json::Map::new();
    let mut put = |k: &str, val: Value| {
        v.insert(k.to_string(), val);
    };
    put("Hostname", json!(or_empty("Hostname")));
    put("Domainname", json!(or_empty("Domainname")));
    put("User", json!(or_empty("User")));
    put("AttachStdin", json!(false));
    put("AttachStdout", json!(false));
    put("AttachStderr", json!(false));
    if let Some(p) = c.get("ExposedPorts") {
        put("ExposedPorts", p.clone());
    }
    put("Tty", json!(false));
    put("OpenStdin", json!(false));
    put("StdinOnce", json!(false));
    put("Env", or_null("Env"));
    put("Cmd", or_null("Cmd"));
    for k in ["Healthcheck", "ArgsEscaped"] {
        if let Some(x) = c.get(k) {
            put(k, x.clone());
        }
    }
    put("Image", json!(or_empty("Image")));
    put("Volumes", or_null("Volumes"));
    put("WorkingDir", json!(or_empty("WorkingDir")));
    put("Entrypoint", or_null("Entrypoint"));
    put("OnBuild", or_null("OnBuild"));
    put("Labels", or_null("Labels"));
    for k in ["StopSignal", "Shell"] {
        if let Some(x) = c.get(k) {
            put(k, x.clone());
        }
    }
    Value::Object(v)
}

/// Prints a JSON array with one object per name.
pub fn main(root: &Path, args: &InspectArgs) -> Result<i32, Error> {
    let template = args
        .format
        .as_deref()
        .map(Template::parse)
        .transpose()
        .map_err(|e| Error::Usage(format!("template parsing error: {e}")))?;
    let mut out = Vec::new();
    let mut status = 0;
    let kind = args.kind.as_deref();
    for name in &args.names {
        let found: Result<Value, Error> = (|| {
            if kind.is_none() || kind == Some("container") {
                match containers::find(root, name) {
                    Ok(c) => {
                        let mut v = container_json(root, &c)?;
                        if args.size {
                            // The writable layer's bytes, and with the image's under it.
                            let rw =
                                ch05_image_pull::store::dir_size(&c.path("upper")).unwrap_or(0);
                            let image = crate::store(root)
                                .ok()
                                .and_then(|s| s.resolve(&c.config.image_id).ok().flatten())
                                .map_or(0, |i| i.size);
                            v["SizeRw"] = json!(rw);
                            v["SizeRootFs"] = json!(rw + image);
                        }
                        return Ok(v);
                    }
                    Err(Error::NoSuchContainer(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            if kind.is_none() || kind == Some("image") {
                let store = crate::store(root)?;
                if let Some(img) = store.resolve(name)? {
                    let config = store.read_blob(&img.config_digest)?;
                    return Ok(image_json(&store, &img, &config));
                }
            }
            if (kind.is_none() || kind == Some("volume"))
                && let Ok(v) = volumes::inspect(root, name)
            {
                return Ok(v.docker_json());
            }
            Err(match kind {
                Some("container") => Error::NoSuchContainer(name.clone()),
                Some("image") => Error::NoSuchImage(name.clone()),
                Some("volume") => Error::NoSuchVolume(name.clone()),
                _ => Error::Usage(format!("No such object: {name}")),
            })
        })();
        match found {
            Ok(v) => out.push(v),
            Err(e) => {
                crate::say(&e);
                status = 1;
            }
        }
    }
    match template {
        // One line per object, as docker prints a template.
        Some(t) => {
            for v in &out {
                println!("{}", t.render(v).map_err(|e| Error::Usage(e.to_string()))?);
            }
            // docker's TemplateInspector.Flush: an empty result is still a line.
            if out.is_empty() {
                println!();
            }
        }
        None => println!("{}", crate::format::inspect_json(&Value::Array(out))),
    }
    Ok(status)
}
