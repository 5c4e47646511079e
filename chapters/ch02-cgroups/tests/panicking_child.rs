//! A child's panic stays in the child.
//!
//! clone3 without a new stack runs the child on a copy of the parent's stack, so the frames
//! below the call are the parent's, with the parent's guards in them. If a panic in the child
//! (a learner's bug in an exercise) unwound into those frames, the child would run their
//! drops too: remove the parent's cgroup, delete the parent's temporary directory. This test
//! makes such a child on purpose, as root, and checks that the parent's things survive.
//!
//! It is a `main` of its own (`harness = false`): clone3 refuses to run in a multi-threaded
//! process, and libtest runs tests on threads.
use std::path::Path;

use ch01_namespaces::{CloneError, Sys};
use ch02_cgroups::sys::Kernel;
use ch02_cgroups::{Cgroup, Controller, Layout};
use nix::sched::CloneFlags;
use nix::sys::wait::WaitStatus;

fn main() {
    if !testkit::gate("panicking_child", testkit::is_root(), "root") {
        return;
    }
    a_panicking_child_leaves_the_parents_guards_alone();
    clone3_refuses_a_multi_threaded_process();
    println!("panicking_child: 2 checks passed");
}

fn a_panicking_child_leaves_the_parents_guards_alone() {
    let sys = Kernel::new(false);
    let layout = Layout::detect().expect("read mountinfo");
    let name = format!("panic-test-{}", std::process::id());
    // The parent's guards: both would be undone by a drop run in the child.
    let cgroup = Cgroup::create(&sys as &dyn Sys, &layout, &name, &[Controller::Pids])
        .expect("create a cgroup");
    let rootfs = tempfile::tempdir().expect("make a temporary directory");
    std::fs::write(rootfs.path().join("etc-hostname"), "box\n").unwrap();

    eprintln!("panicking_child: the child's panic message below is expected");
    let pid = sys
        .clone3(CloneFlags::empty(), &mut || {
            panic!("a learner's bug in the child");
        })
        .expect("clone3");
    let status = sys.waitpid(pid, false).expect("waitpid");

    assert_eq!(
        status,
        WaitStatus::Exited(pid, ch01_namespaces::sys::PANIC_EXIT),
        "the child should end with 125 after its panic"
    );
    assert!(
        rootfs.path().join("etc-hostname").exists(),
        "the child's panic deleted the parent's temporary directory"
    );
    for dir in cgroup.dirs() {
        assert!(
            Path::new(&dir.path).is_dir(),
            "the child's panic removed the parent's cgroup {}",
            dir.path.display()
        );
    }
    cgroup.remove().expect("remove the cgroup");
    assert!(
        testkit::leaks::cgroups_named(&name).is_empty(),
        "cgroup left behind"
    );
}

fn clone3_refuses_a_multi_threaded_process() {
    let sys = Kernel::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || rx.recv());
    let refused = sys.clone3(CloneFlags::empty(), &mut || 0);
    tx.send(()).unwrap();
    other.join().unwrap().unwrap();
    match refused {
        Err(CloneError::Threads(n)) => assert!(n >= 2, "{n} threads"),
        other => panic!("clone3 from a multi-threaded process: {other:?}"),
    }
}
