//! The exercises: for each marked solution in the chapters' code (`// exercise(ID): …`), the
//! tests that check it, a hint, and what to run to see it work. Easy to hard within a
//! chapter; each one's tests reach no other exercise's code, so a learner can do them in
//! any order (`cargo xtask prove-workshop` checks that, one exercise at a time).

/// How hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Easy,
    Medium,
    Hard,
}

impl Level {
    pub fn word(self) -> &'static str {
        match self {
            Level::Easy => "easy",
            Level::Medium => "medium",
            Level::Hard => "hard",
        }
    }
}

/// Which test target of the crate holds the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// The library's unit tests (`cargo test --lib`): the `Recorder` seam or a fixture
    /// tree, no root needed.
    Lib,
    /// An integration test file (`cargo test --test NAME`): the real binary, as root.
    Test(&'static str),
}

impl Target {
    pub fn describe(self, package: &str) -> String {
        match self {
            Target::Lib => format!("cargo test -p {package} --lib"),
            Target::Test(name) => format!("cargo test -p {package} --test {name}"),
        }
    }
}

/// One exercise.
#[derive(Debug, Clone)]
pub struct Exercise {
    /// `chNN.name`, as in the marker.
    pub id: &'static str,
    pub level: Level,
    /// What it is about, in a few words.
    pub title: &'static str,
    /// The crate that holds the solution and the tests.
    pub package: &'static str,
    pub target: Target,
    /// The tests' full names (as `cargo test -- --exact` takes them).
    pub tests: &'static [&'static str],
    /// The tests run the real thing and need root.
    pub root: bool,
    /// What to think about when stuck.
    pub hint: &'static str,
    /// What to run to see it work once the tests pass.
    pub see: &'static str,
}

impl Exercise {
    /// `ch03` of `ch03.pivot`.
    pub fn chapter(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }
}

use Level::*;

/// Every exercise, in the order a learner meets them.
pub const EXERCISES: &[Exercise] = &[
    // Chapter 1: namespaces.
    Exercise {
        id: "ch01.flags",
        level: Easy,
        title: "which CLONE_NEW* flags the options ask for",
        package: "ch01-namespaces",
        target: Target::Lib,
        tests: &[
            "tests::every_option_asks_for_its_own_namespace",
            "tests::pid_implies_mount_and_hostname_implies_uts",
        ],
        root: false,
        hint: "Kind::flag gives each kind's flag. A new PID namespace needs its own /proc, so \
               it needs a new mount namespace too (the note's `--pid` demo).",
        see: "sudo target/debug/ch01-namespaces run --pid -- ps aux",
    },
    Exercise {
        id: "ch01.subuid",
        level: Easy,
        title: "reading /etc/subuid: whose range is it",
        package: "ch01-namespaces",
        target: Target::Lib,
        tests: &["idmap::tests::subordinate_ranges_are_found_by_name_or_uid"],
        root: false,
        hint: "subuid(5): NAME:START:COUNT, NAME a user name or a uid; the first matching line \
               wins; a line that does not parse is skipped, not an error.",
        see: "grep -E \"^(root|dockremap):\" /etc/subuid",
    },
    Exercise {
        id: "ch01.maps",
        level: Medium,
        title: "the parent writes the child's uid_map and gid_map",
        package: "ch01-namespaces",
        target: Target::Lib,
        tests: &[
            "idmap::tests::the_maps_are_one_line_each_and_setgroups_is_denied_first_without_root",
        ],
        root: false,
        hint: "user_namespaces(7): one write per map, each line `INSIDE OUTSIDE COUNT` ending \
               in a newline; an unprivileged parent must write `deny` to setgroups before the \
               gid_map. Write through `sys.write_file`, so the Recorder sees it.",
        see: "target/debug/ch01-namespaces run --user -- sh -c 'id -u; cat /proc/self/uid_map'",
    },
    Exercise {
        id: "ch01.enter",
        level: Medium,
        title: "what the child does in its new namespaces, in kernel order",
        package: "ch01-namespaces",
        target: Target::Lib,
        tests: &[
            "tests::the_child_makes_mounts_private_before_mounting_proc",
            "tests::the_child_takes_only_the_steps_of_its_new_namespaces",
            "tests::a_failing_mount_is_reported_with_the_call_and_errno",
        ],
        root: false,
        hint: "Test plan.flags for each CLONE_NEW* flag. The helpers are just below enter: \
               become_root_inside, make_mounts_private, mount_proc, set_hostname; the last \
               step is process::exec, whose error is the function's result.",
        see: "sudo target/debug/ch01-namespaces --trace run --pid --hostname box -- hostname",
    },
    Exercise {
        id: "ch01.join",
        level: Hard,
        title: "joining a running process's namespaces (docker exec)",
        package: "ch01-namespaces",
        target: Target::Lib,
        tests: &[
            "ns::tests::entering_namespaces_joins_pid_in_the_parent_and_the_rest_in_the_child",
        ],
        root: false,
        hint: "setns(2) each held descriptor but the PID one (the parent joined that: it only \
               moves children). Joining a mount namespace does not move you into the \
               target's root: fchdir to the held /proc/PID/root, chroot(\".\"), chdir(\"/\").",
        see: "C=$(sudo target/debug/ch01-namespaces run --detach --pid --uts --hostname one -- sleep 60); sudo target/debug/ch01-namespaces join --target $C -- sh -c 'hostname; ps aux'",
    },
    // Chapter 2: cgroups.
    Exercise {
        id: "ch02.memory",
        level: Easy,
        title: "a memory limit on cgroup v2",
        package: "ch02-cgroups",
        target: Target::Lib,
        tests: &[
            "cgroup::v2_tests::memory_goes_to_memory_max_and_swap_beyond_it_to_memory_swap_max",
        ],
        root: false,
        hint: "Bytes, as decimal text, into memory.max. v2's memory.swap.max counts swap alone \
               (v1's memsw counted memory plus swap): docker's --memory-swap is the total, so \
               the swap is the total minus the memory. `optional` lets a kernel without swap \
               accounting skip the file.",
        see: "sudo target/debug/ch02-cgroups demo memory",
    },
    Exercise {
        id: "ch02.cpu",
        level: Easy,
        title: "half a CPU: a quota per period",
        package: "ch02-cgroups",
        target: Target::Lib,
        tests: &["cgroup::v2_tests::a_cpu_limit_is_a_quota_per_period_on_v2_and_on_v1"],
        root: false,
        hint: "The quota is cpus × the period, in microseconds, rounded. v2 takes both in one \
               file, `QUOTA PERIOD`; v1 has one file each, the period written first.",
        see: "sudo target/debug/ch02-cgroups demo cpu",
    },
    Exercise {
        id: "ch02.join",
        level: Easy,
        title: "moving a process into the cgroup",
        package: "ch02-cgroups",
        target: Target::Lib,
        tests: &["cgroup::v2_tests::joining_writes_the_pid_into_cgroup_procs_of_every_directory"],
        root: false,
        hint: "A process joins by its pid being written into cgroup.procs, and on v1 it must \
               join the cgroup in each hierarchy (one directory per controller).",
        see: "sudo target/debug/ch02-cgroups run --pids 50 -- cat /proc/self/cgroup",
    },
    Exercise {
        id: "ch02.enable",
        level: Medium,
        title: "v2: a parent hands controllers down (subtree_control)",
        package: "ch02-cgroups",
        target: Target::Lib,
        tests: &["cgroup::v2_tests::controllers_are_enabled_with_plus_names_in_subtree_control"],
        root: false,
        hint: "Read dir/cgroup.subtree_control first (space-separated names); write the \
               missing ones as `+memory +pids` in one write. Writing one already enabled is \
               harmless to the kernel, but one write of the missing ones is the clean way.",
        see: "cat /sys/fs/cgroup/cgroup.subtree_control",
    },
    Exercise {
        id: "ch02.locate",
        level: Medium,
        title: "which hierarchy holds a controller (v1, v2, hybrid)",
        package: "ch02-cgroups",
        target: Target::Lib,
        tests: &[
            "layout::tests::hybrid_hosts_are_recognised_and_controllers_found_in_v1",
            "layout::tests::co_mounted_v1_controllers_share_a_hierarchy",
            "layout::tests::unified_hosts_read_their_controllers_from_the_root",
        ],
        root: false,
        hint: "On a hybrid host a controller bound to a v1 hierarchy is not available in v2, \
               so look in v1_controller_mounts first. Controller::v1_only ones (cpuacct, \
               freezer) have no v2 home. Only then the unified hierarchy, if its controllers \
               list the name.",
        see: "target/debug/ch02-cgroups info",
    },
    // Chapter 3: a root filesystem of its own.
    Exercise {
        id: "ch03.volume",
        level: Easy,
        title: "reading -v HOST:CONTAINER[:ro]",
        package: "ch03-rootfs-pivot_root",
        target: Target::Lib,
        tests: &["rootfs::tests::volumes_parse_with_clear_errors"],
        root: false,
        hint: "Split on ':' into two or three parts; both paths must start with '/'; the mode \
               is ro or rw (rw when absent). Each error names the spec and what is wrong, as \
               the test shows.",
        see: "sudo target/debug/ch03-rootfs-pivot_root run --rootfs rootfs -v /etc:/data:ro -- ls /data",
    },
    Exercise {
        id: "ch03.sanitize",
        level: Easy,
        title: "an archive entry's name cannot leave the target",
        package: "ch03-rootfs-pivot_root",
        target: Target::Lib,
        tests: &["extract::tests::names_are_made_relative_and_dotdot_is_refused"],
        root: false,
        hint: "Path::components() does the splitting: RootDir and CurDir are dropped, \
               ParentDir is refused (even when it would stay inside: simpler to prove safe), \
               Normal parts are kept. An empty result is the root itself.",
        see: "sudo target/debug/ch03-rootfs-pivot_root run --rootfs rootfs.tar -- ls /  # note 03",
    },
    Exercise {
        id: "ch03.pivot",
        level: Medium,
        title: "pivot_root(\".\", \".\") and detaching the old root",
        package: "ch03-rootfs-pivot_root",
        target: Target::Lib,
        tests: &["rootfs::tests::pivot_switches_into_the_new_root_and_detaches_the_old_one"],
        root: false,
        hint: "pivot_root(2) NOTES: with new_root and put_old both \".\", the old root ends up \
               stacked on top of the new one at \".\". Make it MS_SLAVE|MS_REC first so the \
               detach (umount2 MNT_DETACH) cannot propagate to the host, and end in \"/\".",
        see: "sudo target/debug/ch03-rootfs-pivot_root --trace run --rootfs rootfs -- true",
    },
    Exercise {
        id: "ch03.mask",
        level: Medium,
        title: "docker's read-only and masked kernel files",
        package: "ch03-rootfs-pivot_root",
        target: Target::Lib,
        tests: &[
            "rootfs::tests::kernel_files_are_bound_read_only_and_masked_with_dev_null_or_an_empty_tmpfs",
        ],
        root: false,
        hint: "A bind mount is made read-only only by a second mount with \
               MS_REMOUNT|MS_BIND|MS_RDONLY (keep /proc's nosuid, nodev, noexec). /dev/null cannot be bound on a \
               directory (ENOTDIR): mount a read-only tmpfs there. ENOENT means this kernel \
               has no such file: skip it.",
        see: "sudo target/debug/mini-docker run --rm busybox cat /proc/kcore  # note 09",
    },
    Exercise {
        id: "ch03.escape",
        level: Hard,
        title: "climbing out of a chroot (and why pivot_root stops it)",
        package: "ch03-rootfs-pivot_root",
        target: Target::Test("rootfs"),
        tests: &["a_chroot_can_be_climbed_out_of"],
        root: true,
        hint: "chroot(2) does not change the current directory: after chroot(sub) the cwd is \
               above the root, where \"..\" is not stopped. Climb, then chroot(\".\") makes \
               the host's / the root again. Run it with --pivot too: why does it stay inside?",
        see: "sudo target/debug/ch03-rootfs-pivot_root escape --rootfs rootfs; sudo target/debug/ch03-rootfs-pivot_root escape --rootfs rootfs --pivot",
    },
    // Chapter 4: union filesystems and layers.
    Exercise {
        id: "ch04.options",
        level: Easy,
        title: "overlay's mount(2) option string",
        package: "ch04-unionfs-layers",
        target: Target::Lib,
        tests: &["overlay::tests::the_option_string_lists_lowers_top_first_and_escapes_separators"],
        root: false,
        hint: "overlayfs.rst: lowerdir lists the layers top first, separated by ':'; escape() \
               protects a ':' or ',' inside a path. redirect_dir=off keeps renamed \
               directories expressible as an OCI layer.",
        see: "sudo target/debug/ch04-unionfs-layers demo",
    },
    Exercise {
        id: "ch04.fsconfig",
        level: Medium,
        title: "the new mount API: one lowerdir+ per layer",
        package: "ch04-unionfs-layers",
        target: Target::Lib,
        tests: &["overlay::tests::the_new_api_adds_one_lower_layer_per_fsconfig_call"],
        root: false,
        hint: "fsopen(2), fsconfig(2) with FSCONFIG_SET_STRING for source, each lowerdir+, \
               upperdir and workdir; redirect_dir off in the initial user namespace, else the \
               userxattr flag; then FSCONFIG_CMD_CREATE, fsmount(2), move_mount(2). No \
               option string, so no length limit (Linux 6.8+).",
        see: "sudo target/debug/ch04-unionfs-layers --trace demo 2>&1 | grep fsconfig",
    },
    Exercise {
        id: "ch04.whiteout",
        level: Medium,
        title: "an OCI whiteout (.wh.NAME) becomes overlay's 0/0 device",
        package: "ch04-unionfs-layers",
        target: Target::Lib,
        tests: &[
            "apply::tests::a_whiteout_replaces_the_name_with_a_0_0_device_in_a_layer_directory",
        ],
        root: true,
        hint: "image-spec layer.md, whiteouts; overlayfs.rst, whiteouts: a character device \
               with device number 0/0. Remove what is there first (remove_all), then \
               mknodat(parent, name, S_IFCHR, 0, makedev(0, 0)) through the SafeRoot.",
        see: "sudo target/debug/ch04-unionfs-layers demo",
    },
    Exercise {
        id: "ch04.changes",
        level: Hard,
        title: "docker diff: A, C and D from the upper layer",
        package: "ch04-unionfs-layers",
        target: Target::Lib,
        tests: &[
            "changes::tests::additions_changes_and_deletions_are_told_apart_through_the_layers",
            "changes::tests::an_opaque_upper_directory_deletes_what_the_layers_below_had_in_it",
        ],
        root: true,
        hint: "Only the upper layer is walked. is_whiteout says D; resolve(lowers, rel) says \
               whether the path exists below (C) or not (A). An opaque directory hides what \
               the lowers had in it (children(), unless upper has that name). Paths are \
               shown from \"/\".",
        see: "sudo target/debug/mini-docker run --name d busybox sh -c 'touch /new; rm -r /etc'; sudo target/debug/mini-docker diff d",
    },
    // Chapter 5: pulling images.
    Exercise {
        id: "ch05.choose",
        level: Easy,
        title: "which WWW-Authenticate challenge to answer",
        package: "ch05-image-pull",
        target: Target::Lib,
        tests: &["auth::tests::bearer_is_preferred"],
        root: false,
        hint: "Schemes are stored lower case. Bearer carries a scope (a token for this one \
               repository), so it wins over Basic; a scheme we cannot answer is no answer.",
        see: "eval \"$(scripts/registry.sh)\"; target/debug/ch05-image-pull --trace pull $TOKEN_REGISTRY/busybox",
    },
    Exercise {
        id: "ch05.verify",
        level: Easy,
        title: "a manifest must hash to the digest asked for or announced",
        package: "ch05-image-pull",
        target: Target::Lib,
        tests: &[
            "story::tests::a_blob_is_its_digest_and_its_size_and_a_manifest_its_announced_digest",
        ],
        root: false,
        hint: "distribution's spec.md, \"Pulling manifests\": by digest the id is the digest; by \
               tag, compare with Docker-Content-Digest when the registry sends one. An \
               announced value that does not parse as a digest is no check at all.",
        see: "eval \"$(scripts/registry.sh)\"; target/debug/ch05-image-pull pull --simple $REGISTRY/busybox",
    },
    Exercise {
        id: "ch05.reference",
        level: Medium,
        title: "what busybox really means: docker.io/library/busybox:latest",
        package: "ch05-image-pull",
        target: Target::Lib,
        tests: &[
            "reference::tests::normalisation_follows_dockers_rules",
            "reference::tests::bad_references_say_which_part_is_wrong",
        ],
        root: false,
        hint: "distribution/reference: the digest after '@'; the tag after the last ':' that \
               follows the last '/' (localhost:5000/x has no tag); the first part is a \
               registry only if it has '.' or ':' or is localhost. check_tag, check_registry \
               and check_repository give the errors.",
        see: "eval \"$(scripts/registry.sh)\"; target/debug/ch05-image-pull pull --simple $REGISTRY/busybox:v2s2",
    },
    Exercise {
        id: "ch05.token",
        level: Hard,
        title: "the token dance: credentials for a scoped Bearer token",
        package: "ch05-image-pull",
        target: Target::Lib,
        tests: &[
            "story::tests::the_token_dance_trades_credentials_for_a_bearer_token_scoped_to_pulling",
        ],
        root: false,
        hint: "distribution's token.md: GET the challenge's realm with service and \
               scope=repository:NAME:pull (auth::scope, auth::token_url), with the \
               credentials as Basic if any; the answer's token or access_token \
               (TokenResponse). A Basic challenge needs no request.",
        see: "eval \"$(scripts/registry.sh)\"; target/debug/ch05-image-pull --trace pull $TOKEN_REGISTRY/busybox",
    },
    // Chapter 6: the Dockerfile.
    Exercise {
        id: "ch06.chain",
        level: Easy,
        title: "the build cache's key: a chain of digests",
        package: "ch06-dockerfile",
        target: Target::Lib,
        tests: &["build::tests::the_cache_chain_changes_with_any_input"],
        root: false,
        hint: "Each step's key digests the previous step's key, the step itself and the \
               build arguments it sees, so a change anywhere changes every key after it: \
               that is why a build is reused up to the first change only.",
        see: "mkdir -p /tmp/ctx && echo hi > /tmp/ctx/hi && printf 'FROM scratch\\nCOPY hi /\\n' > /tmp/ctx/Dockerfile && sudo target/debug/ch06-dockerfile build -t ctx /tmp/ctx  # twice",
    },
    Exercise {
        id: "ch06.continues",
        level: Medium,
        title: "a line that ends in the escape character goes on",
        package: "ch06-dockerfile",
        target: Target::Lib,
        tests: &[
            "parser::tests::a_line_ending_in_the_escape_character_goes_on",
            "parser::tests::directives_come_first_and_set_the_escape_character",
        ],
        root: false,
        hint: "self.escape is '\\' unless `# escape=` set it (often '`'). Trim trailing \
               blanks first; two escape characters at the end are an escaped escape, which \
               does not continue the line.",
        see: "printf 'FROM busybox\\nRUN echo a \\\\\\n  b\\n' > /tmp/Dockerfile && target/debug/ch06-dockerfile parse --dump /tmp/Dockerfile",
    },
    Exercise {
        id: "ch06.ignore",
        level: Medium,
        title: ".dockerignore: the last matching pattern decides",
        package: "ch06-dockerfile",
        target: Target::Lib,
        tests: &[
            "context::tests::the_last_matching_pattern_decides_and_directories_cover_their_contents",
        ],
        root: false,
        hint: "Check \"target\", then \"target/debug\", then \"target/debug/app\": at each, start \
               from the parent's verdict; every pattern that matches sets it (exclusion is a \
               \"!\" line, which includes again).",
        see: "printf 'hi\\n' > /tmp/ctx/hi; printf 'hi\\n' > /tmp/ctx/.dockerignore; sudo target/debug/ch06-dockerfile build -t ctx /tmp/ctx  # COPY hi now fails",
    },
    Exercise {
        id: "ch06.quote",
        level: Medium,
        title: "single quotes in BuildKit's shell lexer",
        package: "ch06-dockerfile",
        target: Target::Lib,
        tests: &[
            "shell::tests::expansion_follows_buildkits_lexer",
            "shell::tests::errors_say_what_is_wrong",
            "shell::tests::raw_modes_keep_quotes_escapes_and_unset_variables",
        ],
        root: false,
        hint: "self.pos is at the opening quote: step over it, then take characters with \
               self.next() until the closing one. Inside, a backslash is just a backslash. \
               In raw mode (self.lexer.raw_quotes) the quotes themselves are kept.",
        see: "echo \"'\\$HOME' \\$HOME\" | target/debug/ch06-dockerfile expand  # note 06",
    },
    // Chapter 7: a network for containers.
    Exercise {
        id: "ch07.ports",
        level: Easy,
        title: "reading -p [IP:][HOST:]CONTAINER[/PROTO]",
        package: "ch07-veth-bridge",
        target: Target::Lib,
        tests: &["ports::tests::dockers_publish_forms"],
        root: false,
        hint: "Split the protocol off after the last '/', then the rest on ':' into one to \
               three parts. range() reads \"80\" or \"8000-8010\". No host port is port 0, \
               chosen at connect; a host range with one container port takes its first.",
        see: "sudo target/debug/ch07-veth-bridge run -p 127.0.0.1:8080:80 --rootfs rootfs -- httpd -f -p 80",
    },
    Exercise {
        id: "ch07.allocate",
        level: Easy,
        title: "giving out addresses: lowest free first",
        package: "ch07-veth-bridge",
        target: Target::Lib,
        tests: &["ipam::tests::addresses_are_given_lowest_first_and_never_twice"],
        root: false,
        hint: "subnet.hosts() lists the usable addresses in order; the gateway and `used` \
               are taken. --ip (`wanted`) must be in the subnet and free, with docker's \
               messages (\"Address already in use\").",
        see: "sudo target/debug/mini-docker network inspect bridge  # note 07",
    },
    Exercise {
        id: "ch07.routes",
        level: Medium,
        title: "a subnet clear of the host's routes (/proc/net/route)",
        package: "ch07-veth-bridge",
        target: Target::Lib,
        tests: &["ipam::tests::the_routing_table_rules_out_subnets"],
        root: false,
        hint: "Columns: Iface Destination Gateway Flags RefCnt Use Metric Mask…, addresses \
               as little-endian hex (u32::from_str_radix, then swap_bytes). The prefix is the \
               mask's count of ones. Skip the header line and the default route.",
        see: "cat /proc/net/route; ip route",
    },
    Exercise {
        id: "ch07.veth",
        level: Hard,
        title: "the veth pair, one end born in the container's namespace",
        package: "ch07-veth-bridge",
        target: Target::Lib,
        tests: &[
            "tests::wiring_makes_the_peer_inside_the_namespace_then_addresses_and_routes_it_there",
        ],
        root: false,
        hint: "Each step is sys.apply(At::Host or At::Netns(netns), &Op::…): AddVeth (the \
               peer is created in netns, so it never shows on the host), SetMaster to \
               net.bridge, Up; then inside AddAddr with the subnet's prefix, Up the \
               interface and lo, and DefaultRoute via net.gateway() only when `first` and \
               the network is not internal.",
        see: "sudo target/debug/ch07-veth-bridge --trace run --rootfs rootfs -- ip addr",
    },
];
