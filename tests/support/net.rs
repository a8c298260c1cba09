//! Several "hosts" on one machine: one network namespace per host, all plugged into a
//! bridge that lives in its own namespace, plus an optional dnsmasq in another one.
//!
//! Layout of a [`Net`] with prefix `bu<pid>-<k><tag>` and subnet number `n`:
//! - `<prefix>-br`: bridge `br0`, one port `p<i>` per host (no uplink: nothing leaves);
//! - `<prefix>-<host>`: `lo` up, `eth0` with 10.213.<n>.<10+i>/24 and/or
//!   fd00:213:<n>::<10+i>/64, a default route to the unused .1/::1 gateway (so
//!   "which interface holds the default route" has an answer, as in a container),
//!   `/etc/netns/<ns>/{resolv.conf,hosts}` like Docker writes them;
//! - `<prefix>-dns`: dnsmasq on 10.213.<n>.2 and fd00:213:<n>::2.
//!
//! Namespace names carry the owner's pid, so a later run removes what a killed run left
//! behind (`bu<pid>-...` with a dead pid). `Drop` kills every process inside the
//! namespaces (`ip netns pids`, which lists exactly the processes of those namespaces),
//! deletes them and their /etc/netns dirs; it is idempotent and runs on panic too.

use std::ffi::OsStr;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::chroot::Toolchain;
use super::{TempDir, output_timeout, require, require_root, run_ok, wait_until};

/// DNS data for [`Net::start_dns`]: `a` gives A or AAAA records (by address type; a name
/// may appear several times), `srv` gives `(name, target, port)` SRV records, `search`
/// the search domains written to every host's resolv.conf.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub search: Vec<String>,
    pub a: Vec<(String, IpAddr)>,
    pub srv: Vec<(String, String, u16)>,
}

impl Zone {
    /// `label.search` answering with every host's address, found as the
    /// short name `label` through the search domain `search`.
    pub fn service(label: &str, search: &str, hosts: &[&Host]) -> Zone {
        Zone {
            search: vec![search.to_string()],
            a: hosts
                .iter()
                .map(|h| (format!("{label}.{search}"), h.addr()))
                .collect(),
            srv: Vec::new(),
        }
    }
}

/// One host of a [`Net`]: a namespace with `ifname` (`eth0`) holding its addresses.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub ns: String,
    pub ifname: String,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
    /// Where [`Host::spawn`] writes process logs (inside the Net's temp dir).
    pub log_dir: PathBuf,
    /// The toolchain root its commands run chrooted into ([`Host::in_root`]); None: the
    /// machine's own filesystem.
    pub root: Option<Toolchain>,
}

const HOSTNAME_SCRIPT: &str = r#"hostname "$0" && exec "$@""#;

impl Host {
    /// `program` run inside this host: its network namespace (with its resolv.conf and
    /// hosts files) and its own UTS namespace whose hostname is the host's name. Every
    /// wrapper execs, so the child's pid is the program's pid. Add args and env as usual.
    ///
    /// A host [`Host::in_root`] runs `program` chrooted into its toolchain root, with
    /// that root's mounts made inside the mount namespace `ip netns exec` creates (see
    /// `chroot.rs`); HOME is the Net's temp dir (the root stays as built).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "unshare", "--uts", "--"])
            .args(["sh", "-c", HOSTNAME_SCRIPT, &self.name]);
        if let Some(root) = &self.root {
            root.wrap(&mut cmd);
            cmd.env("HOME", &self.log_dir);
        }
        cmd.arg(program);
        cmd
    }

    /// This host running every command chrooted into `toolchain`'s root: same
    /// namespace, addresses and logs, the release and its tools of that toolchain.
    pub fn in_root(&self, toolchain: &Toolchain) -> Host {
        Host {
            root: Some(toolchain.clone()),
            ..self.clone()
        }
    }

    /// Runs `program args` inside the host to completion (see [`output_timeout`]).
    pub fn output(&self, program: impl AsRef<OsStr>, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = self.command(program);
        cmd.args(args);
        output_timeout(cmd, timeout)
    }

    /// The host's address: IPv4 when it has one, else IPv6.
    pub fn addr(&self) -> IpAddr {
        match (self.v4, self.v6) {
            (Some(v4), _) => IpAddr::V4(v4),
            (None, Some(v6)) => IpAddr::V6(v6),
            (None, None) => panic!("host {} has no address", self.name),
        }
    }

    /// Starts `cmd` (normally from [`Host::command`]) in its own process group with
    /// stdout and stderr going to one log file; the [`Proc`] kills it on Drop.
    pub fn spawn(&self, mut cmd: Command) -> Proc {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let log = self.log_dir.join(format!("{}-{seq}.log", self.name));
        let file =
            File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let file2 = file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup log file: {e}"));
        let shown = format!("{cmd:?}");
        // The command line goes next to the log, not into it: tests search the log for
        // needles that the command line itself may contain.
        let _ = std::fs::write(log.with_extension("cmd"), &shown);
        cmd.stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
        Proc {
            pid: child.id(),
            child,
            log,
            what: shown,
            status: None,
        }
    }
}

/// A started process. Drop sends SIGKILL to exactly its pid and its process group (it
/// leads one) and reaps it; when the test is panicking, its log is printed first.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    pid: u32,
    log: PathBuf,
    what: String,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Waits until the log contains `needle`; false on timeout or when the process
    /// exited without writing it.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if !self.alive() {
                // It may have written the needle just before exiting.
                return self.log().contains(needle);
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process still runs (not exited, not a zombie), without reaping it.
    pub fn alive(&self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // The state follows the parenthesised command name: "pid (comm) S ...".
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X"),
            Err(_) => false,
        }
    }

    /// Sends `signal` to the process only (e.g. SIGTERM for a graceful stop).
    pub fn signal(&self, signal: Signal) {
        if self.status.is_none() {
            let _ = kill(pid_of(self.pid), signal);
        }
    }

    /// SIGKILL to the process and its process group, then reaps it.
    pub fn kill9(&mut self) {
        if self.status.is_some() {
            return;
        }
        // The group id is our child's pid: it cannot be reused while the child is
        // unreaped, so this reaches only processes we started.
        let _ = kill(Pid::from_raw(-(self.pid as i32)), Signal::SIGKILL);
        let _ = kill(pid_of(self.pid), Signal::SIGKILL);
        if let Ok(status) = self.child.wait() {
            self.status = Some(status);
        }
    }

    /// Waits for the process to exit by itself; None on timeout (it keeps running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.status {
            return Some(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- log of {} (pid {}) -----\n{}\n----- end of log -----",
                self.what,
                self.pid,
                tail(&self.log(), 8000)
            );
        }
        self.kill9();
    }
}

fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(pid as i32)
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// One test network; see the module docs. Everything it created goes away on Drop.
pub struct Net {
    prefix: String,
    n: u8,
    dir: TempDir,
    bridge_ns: String,
    dns_ns: Option<String>,
    /// Every namespace created, in creation order (torn down in reverse).
    namespaces: Vec<String>,
    /// (host namespace, bridge port name) for link_down/link_up.
    ports: Vec<(String, String)>,
    hosts: Vec<Host>,
    zone: Zone,
    dnsmasq: Option<Child>,
}

impl Net {
    /// A new network with its bridge. `tag` (a few letters) makes the names readable.
    pub fn new(tag: &str) -> Net {
        require_root();
        require(&["ip", "unshare", "hostname"]);
        static SWEEP: Once = Once::new();
        SWEEP.call_once(remove_stale);

        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let k = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag: String = tag
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        let prefix = format!("bu{pid}-{k}{tag}");
        // Each Net is its own L2 segment, so subnets may repeat; distinct numbers only
        // make logs of concurrent tests easier to tell apart.
        let n = ((pid.wrapping_mul(7).wrapping_add(k)) % 250 + 1) as u8;
        let mut net = Net {
            bridge_ns: format!("{prefix}-br"),
            dir: TempDir::new(&format!("net-{tag}")),
            prefix,
            n,
            dns_ns: None,
            namespaces: Vec::new(),
            ports: Vec::new(),
            hosts: Vec::new(),
            zone: Zone::default(),
            dnsmasq: None,
        };
        let br = net.bridge_ns.clone();
        net.add_ns(&br);
        // No multicast snooping: without an MLD querier it can swallow IPv6 neighbour
        // discovery between the ports.
        ip(&[
            "-n",
            &br,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        net
    }

    /// The name prefix of everything this Net creates (`bu<pid>-<k><tag>`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A temp dir owned by the Net (logs, dnsmasq files); removed on Drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Adds a host `name` (letters, digits, `-`) with an IPv4 and/or IPv6 address.
    pub fn add_host(&mut self, name: &str, v4: bool, v6: bool) -> Host {
        assert!(v4 || v6, "host {name} needs at least one address family");
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "host name {name:?}: use letters, digits and '-'"
        );
        let i = self.hosts.len();
        assert!(i < 200, "too many hosts in one Net");
        let ns = format!("{}-{name}", self.prefix);
        assert!(
            !self.namespaces.contains(&ns),
            "host {name} added twice to one Net"
        );
        let port = format!("p{i}");
        let last = 10 + i as u8;
        let v4_addr = v4.then(|| Ipv4Addr::new(10, 213, self.n, last));
        let v6_addr = v6.then(|| self.v6(u16::from(last)));
        self.plug(&ns, &port, v4_addr, v6_addr);
        self.ports.push((ns.clone(), port));
        let host = Host {
            name: name.to_string(),
            ns,
            ifname: "eth0".to_string(),
            v4: v4_addr,
            v6: v6_addr,
            log_dir: self.dir.path().to_path_buf(),
            root: None,
        };
        self.write_etc(&host);
        self.hosts.push(host.clone());
        host
    }

    /// Starts dnsmasq serving `zone` and points every host's resolv.conf at it.
    pub fn start_dns(&mut self, zone: &Zone) {
        require(&["dnsmasq"]);
        if self.dns_ns.is_none() {
            let ns = format!("{}-dns", self.prefix);
            let v4 = self.dns_v4();
            let v6 = self.v6(2);
            self.plug(&ns, "pdns", Some(v4), Some(v6));
            self.dns_ns = Some(ns);
        }
        self.set_dns(zone);
    }

    /// Replaces the records and restarts dnsmasq with them (cache off, so every answer
    /// reflects the current zone); rewrites every host's resolv.conf (search domains).
    pub fn set_dns(&mut self, zone: &Zone) {
        let Some(dns_ns) = self.dns_ns.clone() else {
            return self.start_dns(zone);
        };
        self.stop_dns();
        self.zone = zone.clone();
        for host in self.hosts.clone() {
            self.write_etc(&host);
        }

        let dir = self.dir.path().to_path_buf();
        let hosts_file = dir.join("zone.hosts");
        let mut hosts_text = String::new();
        for (name, addr) in &zone.a {
            hosts_text.push_str(&format!("{addr} {name}\n"));
        }
        write(&hosts_file, &hosts_text);
        let log = dir.join("dnsmasq.log");
        let mut conf = format!(
            "no-resolv\nno-hosts\nno-poll\nbind-interfaces\n\
             listen-address={}\nlisten-address={}\n\
             cache-size=0\nno-negcache\nlocal-ttl=0\nuser=root\n\
             log-queries\nlog-facility={}\naddn-hosts={}\npid-file={}\n",
            self.dns_v4(),
            self.v6(2),
            log.display(),
            hosts_file.display(),
            // Its own pid file: the default /var/run/dnsmasq.pid is shared by
            // every dnsmasq on the machine, so two Nets at once would clash.
            dir.join("dnsmasq.pid").display()
        );
        for (name, target, port) in &zone.srv {
            conf.push_str(&format!("srv-host={name},{target},{port}\n"));
        }
        // The search domains are the zone's own, answered as Docker's and Kubernetes'
        // servers do: an unknown name there is NXDOMAIN, a known name without records
        // of the asked type an empty answer (without this, dnsmasq REFUSES both).
        for domain in &zone.search {
            conf.push_str(&format!("local=/{domain}/\n"));
        }
        let conf_path = dir.join("dnsmasq.conf");
        write(&conf_path, &conf);

        let starts_before = count(&read(&log), "started, version");
        let out = File::create(dir.join("dnsmasq.out"))
            .unwrap_or_else(|e| panic!("cannot create dnsmasq.out: {e}"));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup dnsmasq.out: {e}"));
        let child = Command::new("ip")
            .args(["netns", "exec", &dns_ns, "dnsmasq", "--keep-in-foreground"])
            .arg(format!("--conf-file={}", conf_path.display()))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dnsmasq: {e}"));
        self.dnsmasq = Some(child);
        let mut exited = None;
        wait_until(Duration::from_secs(10), "dnsmasq to start", || {
            if let Some(child) = self.dnsmasq.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                exited = Some(status);
                return true;
            }
            count(&read(&log), "started, version") > starts_before
        });
        if let Some(status) = exited {
            self.dnsmasq = None;
            panic!(
                "dnsmasq exited ({status}):\n{}\n{}",
                read(&dir.join("dnsmasq.out")),
                read(&log)
            );
        }
    }

    /// Stops dnsmasq (queries then time out); `set_dns`/`start_dns` start it again.
    pub fn stop_dns(&mut self) {
        if let Some(mut child) = self.dnsmasq.take() {
            // The whole process group: dnsmasq serves each TCP connection
            // from a forked child, which would keep the port bound.
            let _ = kill(Pid::from_raw(-pid_of(child.id()).as_raw()), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// The DNS server's IPv4 address (it also listens on [`Net::dns_addr_v6`]).
    pub fn dns_addr(&self) -> IpAddr {
        IpAddr::V4(self.dns_v4())
    }

    pub fn dns_addr_v6(&self) -> IpAddr {
        IpAddr::V6(self.v6(2))
    }

    /// dnsmasq's query log so far.
    pub fn dns_log(&self) -> String {
        read(&self.dir.path().join("dnsmasq.log"))
    }

    /// Pulls the host's cable at the switch: its bridge port goes down, the host keeps
    /// its interface and addresses, and packets are dropped silently.
    pub fn link_down(&self, host: &Host) {
        ip(&[
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            self.port(host),
            "down",
        ]);
    }

    pub fn link_up(&self, host: &Host) {
        ip(&["-n", &self.bridge_ns, "link", "set", self.port(host), "up"]);
    }

    /// An IPv4 partition of `host` (a firewall, a security group): every IPv4 packet
    /// arriving on its interface is dropped (nftables in its namespace), so its connections
    /// time out both ways while ARP still resolves, unlike [`Net::link_down`], where
    /// traffic sent to the cut host leaves the senders' neighbour entries unresolved for up
    /// to a second after the link is back. Undone by [`Net::partition_end`].
    pub fn partition(&self, host: &Host) {
        let chain = "{ type filter hook input priority 0; policy accept; }";
        let iif = format!("iifname {} meta nfproto ipv4 drop", host.ifname);
        for rule in [
            "add table inet beamup_partition".to_owned(),
            format!("add chain inet beamup_partition input {chain}"),
            format!("add rule inet beamup_partition input {iif}"),
        ] {
            run_ok("ip", &["netns", "exec", &host.ns, "nft", &rule]);
        }
    }

    pub fn partition_end(&self, host: &Host) {
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &host.ns,
                "nft",
                "delete table inet beamup_partition",
            ],
        );
    }

    fn port(&self, host: &Host) -> &str {
        self.ports
            .iter()
            .find(|(ns, _)| *ns == host.ns)
            .map(|(_, port)| port.as_str())
            .unwrap_or_else(|| panic!("host {} is not part of net {}", host.name, self.prefix))
    }

    fn dns_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.n, 2)
    }

    fn v6(&self, last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x213, u16::from(self.n), 0, 0, 0, 0, last)
    }

    fn add_ns(&mut self, ns: &str) {
        // Recorded before creation so that Drop cleans up a half-built namespace too.
        self.namespaces.push(ns.to_string());
        ip(&["netns", "add", ns]);
        // epmd is reached on 127.0.0.1: with lo down a node fails with `enetunreach`.
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }

    /// A namespace with `eth0` plugged into the bridge as `port`, holding the addresses.
    fn plug(&mut self, ns: &str, port: &str, v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) {
        self.add_ns(ns);
        // Both ends are created directly inside their namespaces: names only need to be
        // unique per namespace, so every host gets a container-like `eth0`.
        ip(&[
            "link",
            "add",
            "eth0",
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            &self.bridge_ns,
        ]);
        ip(&[
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            port,
            "master",
            "br0",
            "up",
        ]);
        let sysctl = |key: &str, value: &str| {
            run_ok(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "sh",
                    "-c",
                    &format!("echo {value} > /proc/sys/net/ipv6/conf/eth0/{key}"),
                ],
            );
        };
        if v6.is_some() {
            // No duplicate address detection: the address is usable at once instead of
            // "tentative" (unbindable) for a second or two.
            sysctl("accept_dad", "0");
        } else {
            // An IPv4-only host has no IPv6 on eth0 at all (not even link-local).
            sysctl("disable_ipv6", "1");
        }
        if let Some(addr) = v4 {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
        }
        if let Some(addr) = v6 {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
        }
        ip(&["-n", ns, "link", "set", "eth0", "up"]);
        // The gateway address belongs to nobody: the route only answers "which
        // interface is the default one", nothing is forwarded anywhere.
        if v4.is_some() {
            let gw = Ipv4Addr::new(10, 213, self.n, 1).to_string();
            ip(&[
                "-n", ns, "route", "add", "default", "via", &gw, "dev", "eth0",
            ]);
        }
        if v6.is_some() {
            let gw = self.v6(1).to_string();
            ip(&[
                "-n", ns, "-6", "route", "add", "default", "via", &gw, "dev", "eth0",
            ]);
        }
    }

    /// /etc/netns/<ns>/{resolv.conf,hosts}, which `ip netns exec` bind-mounts over /etc.
    fn write_etc(&self, host: &Host) {
        let dir = Path::new("/etc/netns").join(&host.ns);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let mut resolv = String::new();
        if !self.zone.search.is_empty() {
            resolv.push_str(&format!("search {}\n", self.zone.search.join(" ")));
        }
        if host.v4.is_some() {
            resolv.push_str(&format!("nameserver {}\n", self.dns_v4()));
        }
        if host.v6.is_some() {
            resolv.push_str(&format!("nameserver {}\n", self.v6(2)));
        }
        resolv.push_str("options timeout:1 attempts:2\n");
        write(&dir.join("resolv.conf"), &resolv);

        let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n");
        for addr in [host.v4.map(IpAddr::V4), host.v6.map(IpAddr::V6)]
            .into_iter()
            .flatten()
        {
            hosts.push_str(&format!("{addr}\t{}\n", host.name));
        }
        write(&dir.join("hosts"), &hosts);
    }

    /// Kills every process in every namespace, deletes the namespaces and their
    /// /etc/netns dirs. Safe to call more than once.
    pub fn teardown(&mut self) {
        self.stop_dns();
        while let Some(ns) = self.namespaces.pop() {
            destroy_ns(&ns);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if std::thread::panicking() && self.dns_ns.is_some() {
            eprintln!(
                "----- dnsmasq log of {} -----\n{}\n----- end -----",
                self.prefix,
                tail(&self.dns_log(), 4000)
            );
        }
        self.teardown();
    }
}

fn ip(args: &[&str]) {
    run_ok("ip", args);
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Pids of the processes inside namespace `ns` (empty when it does not exist).
fn ns_pids(ns: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .stderr(Stdio::null())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn destroy_ns(ns: &str) {
    // Processes of a namespace we created are ours (the release, epmd it daemonized,
    // beamup's reporter, dnsmasq): kill them until none is left.
    for _ in 0..100 {
        let pids = ns_pids(ns);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
}

/// The owner pid in a name `bu<pid>-...`, if it has that shape.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("bu")?;
    let (digits, _) = rest.split_once('-')?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Removes namespaces (and /etc/netns dirs) named `bu<pid>-...` whose owner is dead:
/// leftovers of an earlier run that was killed before its Drop ran.
pub fn remove_stale() {
    let listed = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut names: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    if let Ok(entries) = std::fs::read_dir("/etc/netns") {
        names.extend(
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        );
    }
    names.sort();
    names.dedup();
    let me = std::process::id();
    for name in names {
        if let Some(pid) = owner_pid(&name)
            && pid != me
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            destroy_ns(&name);
        }
    }
}
