fn main() {
    let dir = std::path::Path::new("../shared/conformance/rfc4475");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).unwrap();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let bytes = std::fs::read(dir.join(cols[0])).unwrap();
        let r = hotline::sip::parse::parse(&bytes, hotline::sip::Transport::Udp);
        let got = match &r {
            Ok(m) => format!("OK {}", if m.is_request() { "req" } else { "resp" }),
            Err(hotline::sip::parse::ParseError::Drop(d)) => format!("DROP {:?}", d),
            Err(hotline::sip::parse::ParseError::Reject(r)) => {
                format!("REJECT {} {}", r.status, r.detail)
            }
        };
        println!(
            "{:14} {:40} | {}",
            cols[0],
            cols[4].chars().take(40).collect::<String>(),
            got
        );
    }
}
