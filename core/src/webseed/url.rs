//! The URL of each file of a torrent on a web seed (BEP 19).
//!
//! A `url-list` entry names either the file itself (a single-file torrent, URL not ending
//! in `/`) or a folder: a URL ending in `/` gets the torrent's `name` appended for a
//! single-file torrent, and `name/path/…` for a multi-file one. A multi-file torrent's URL
//! always names a folder, so a missing final `/` is added, as libtorrent does. Each path
//! component is percent-encoded on its own, so a `/`, `?`, `#` or space inside a file name
//! stays part of the name. Padding files (BEP 47) are never fetched: they have no URL.

use crate::metainfo::Info;
use crate::percent::percent_encode_into;
use crate::tracker::{Scheme, TrackerUrl};

use super::WebSeedError;

/// The URL of every file of `info` on the web seed `base`, in file order; `None` for a
/// padding file. Fails if `base` is not an `http` or `https` URL, or a file's URL is
/// not one (too long, say).
pub fn file_urls(base: &str, info: &Info) -> Result<Vec<Option<TrackerUrl>>, WebSeedError> {
    let base = base.trim();
    check(&TrackerUrl::parse(base).map_err(WebSeedError::InvalidUrl)?)?;
    // The fragment is no part of what is fetched.
    let base = base.split_once('#').map_or(base, |(b, _)| b);
    info.files
        .iter()
        .map(|file| {
            if file.attr.padding {
                return Ok(None);
            }
            let mut url = base.to_string();
            if info.multi_file || base.ends_with('/') {
                if !url.ends_with('/') {
                    url.push('/');
                }
                for (i, component) in file.path.iter().enumerate() {
                    if i > 0 {
                        url.push('/');
                    }
                    percent_encode_into(component.as_bytes(), &mut url);
                }
            }
            let parsed = TrackerUrl::parse(&url).map_err(WebSeedError::InvalidUrl)?;
            check(&parsed)?;
            Ok(Some(parsed))
        })
        .collect()
}

/// Only `http` and `https` are web seeds.
pub(super) fn check(url: &TrackerUrl) -> Result<(), WebSeedError> {
    match url.scheme() {
        Scheme::Http | Scheme::Https => Ok(()),
        Scheme::Udp => Err(WebSeedError::InvalidUrl(
            crate::tracker::TrackerError::UnsupportedScheme("udp".into()),
        )),
    }
}

/// A hand-made `Info` of `files` (path, length, padding) for the web seed tests.
#[cfg(test)]
pub(crate) fn test_info(multi: bool, piece_length: u32, files: &[(&[&str], u64, bool)]) -> Info {
    use crate::metainfo::{FileAttr, FileEntry};
    let mut offset = 0;
    let files = files
        .iter()
        .map(|(path, length, padding)| {
            let f = FileEntry {
                path: path.iter().map(|s| s.to_string()).collect(),
                length: *length,
                offset,
                attr: FileAttr {
                    padding: *padding,
                    ..FileAttr::default()
                },
            };
            offset += length;
            f
        })
        .collect::<Vec<_>>();
    Info {
        name: files[0].path[0].clone(),
        piece_length,
        pieces: vec![[0; 20]; offset.div_ceil(u64::from(piece_length)) as usize],
        private: false,
        multi_file: multi,
        files,
        total_length: offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(multi: bool, files: &[(&[&str], u64, bool)]) -> Info {
        test_info(multi, 16384, files)
    }

    fn strs(urls: Vec<Option<TrackerUrl>>) -> Vec<Option<String>> {
        urls.into_iter()
            .map(|u| u.map(|u| u.as_str().to_string()))
            .collect()
    }

    #[test]
    fn single_file() {
        let i = info(false, &[(&["a b.iso"], 10, false)]);
        assert_eq!(
            strs(file_urls("http://h/files/", &i).unwrap()),
            vec![Some("http://h/files/a%20b.iso".into())]
        );
        assert_eq!(
            strs(file_urls("http://h/x.iso", &i).unwrap()),
            vec![Some("http://h/x.iso".into())]
        );
    }

    #[test]
    fn multi_file_paths_are_encoded_per_component() {
        let i = info(
            true,
            &[
                (&["dir", "sub", "a?b#c.txt"], 10, false),
                (&["dir", ".pad", "6"], 6, true),
                (&["dir", "ü"], 1, false),
            ],
        );
        assert_eq!(
            strs(file_urls("https://h:8443/seed", &i).unwrap()),
            vec![
                Some("https://h:8443/seed/dir/sub/a%3Fb%23c.txt".into()),
                None,
                Some("https://h:8443/seed/dir/%C3%BC".into()),
            ]
        );
    }

    #[test]
    fn refused() {
        let i = info(false, &[(&["a"], 1, false)]);
        assert!(file_urls("udp://h:1/", &i).is_err());
        assert!(file_urls("ftp://h/", &i).is_err());
        assert!(file_urls("not a url", &i).is_err());
    }
}
