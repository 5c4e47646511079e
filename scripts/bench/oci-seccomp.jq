# docker's seccomp profile, resolved for x86_64 and docker's default capabilities, as the
# OCI runtime spec's linux.seccomp (what dockerd hands runc).
def caps: ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"];
def has_all($l): ($l // []) - caps | length == 0;
def has_any($l): ($l // []) | any(. as $c | caps | index($c));
{defaultAction, architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
 syscalls: [.syscalls[]
   | select(has_all(.includes.caps) and (has_any(.excludes.caps) | not)
       and ((.includes.arches // []) as $a | ($a | length == 0) or ($a | index("amd64")))
       and ((.excludes.arches // []) | index("amd64") | not))
   | del(.includes, .excludes, .comment)]}
