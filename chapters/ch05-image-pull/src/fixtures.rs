//! Layers for unit tests: a gzip tarball of regular files, built in memory.
use std::io::Write as _;

use crate::Digest;

/// A gzip-compressed tar of `files` (mode 0644, owned by root, mtime 0), with its
/// diff-id (the sha256 of the uncompressed tar) and the uncompressed size.
pub(crate) fn gzip_layer(files: &[(&str, &[u8])]) -> (Vec<u8>, Digest, u64) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append_data(&mut h, name, *content).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let diff_id = Digest::of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id, tar.len() as u64)
}
