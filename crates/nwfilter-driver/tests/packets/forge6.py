# Forged and real IPv6 frames for the dual-stack packet tests (issue 16),
# run inside a guest's namespace by tests/packets/ipv6.rs. Every frame
# goes out of eth0 with the MAC eth0 has. Modes:
#   ra SRC PREFIX [ext]   a router advertisement of PREFIX/64 (autoconf on)
#                         from SRC to ff02::1, behind a destination-options
#                         header with `ext` (RFC 7113 evasion)
#   reply SRC DST DSTMAC  a DHCPv6 Reply (UDP 547->546) from SRC to DST
#   solicit SRC SECONDS   a DHCPv6 Solicit from SRC to ff02::1:2; prints
#                         how many Advertise/Reply came back within SECONDS
#   na SRC DST DSTMAC TARGET [ext|vlanID]
#                         an unsolicited override neighbour advertisement
#                         from SRC to DST claiming TARGET for this MAC (the
#                         cache poisoning of RFC 3756 4.1.1), behind a
#                         destination-options header with `ext`, or in a
#                         frame tagged with VLAN ID with `vlanID`
#   count SECONDS READY [TARGET]
#                         prints how many DHCPv6 server messages (UDP
#                         547->546) arrived on eth0 within SECONDS, or with
#                         TARGET how many neighbour advertisements for it
#                         (tagged or not); creates the file READY once the
#                         capture runs
import sys
import time

from scapy.all import (AsyncSniffer, DHCP6_Advertise, DHCP6_Reply, DHCP6_Solicit,
                       DHCP6OptClientId, DHCP6OptElapsedTime, DHCP6OptIA_NA,
                       DHCP6OptServerId, DUID_LL, Ether, ICMPv6ND_NA, ICMPv6ND_RA,
                       ICMPv6NDOptDstLLAddr, ICMPv6NDOptPrefixInfo,
                       ICMPv6NDOptSrcLLAddr, IPv6, Dot1Q,
                       IPv6ExtHdrDestOpt, UDP, conf, get_if_hwaddr, sendp)

conf.verb = 0
IFACE = "eth0"
MAC = get_if_hwaddr(IFACE)


def multicast_mac(group_low32):
    return "33:33:" + ":".join(f"{b:02x}" for b in group_low32.to_bytes(4, "big"))


def server_messages(pkt):
    return UDP in pkt and pkt[UDP].sport == 547 and pkt[UDP].dport == 546 and pkt[Ether].src != MAC


def ra(src, prefix, ext=None):
    ip = IPv6(src=src, dst="ff02::1", hlim=255)
    if ext == "ext":
        ip = ip / IPv6ExtHdrDestOpt()
    frame = (Ether(src=MAC, dst=multicast_mac(1)) / ip / ICMPv6ND_RA(routerlifetime=0)
             / ICMPv6NDOptPrefixInfo(prefix=prefix, prefixlen=64, L=1, A=1,
                                     validlifetime=3600, preferredlifetime=1800)
             / ICMPv6NDOptSrcLLAddr(lladdr=MAC))
    sendp(frame, iface=IFACE, count=2, inter=0.2)


def na(src, dst, dstmac, target, ext=None):
    ip = IPv6(src=src, dst=dst, hlim=255)
    if ext == "ext":
        ip = ip / IPv6ExtHdrDestOpt()
    ether = Ether(src=MAC, dst=dstmac)
    if ext and ext.startswith("vlan"):
        ether = ether / Dot1Q(vlan=int(ext[4:]))
    frame = (ether / ip / ICMPv6ND_NA(R=0, S=0, O=1, tgt=target)
             / ICMPv6NDOptDstLLAddr(lladdr=MAC))
    sendp(frame, iface=IFACE, count=3, inter=0.2)


def reply(src, dst, dstmac):
    frame = (Ether(src=MAC, dst=dstmac) / IPv6(src=src, dst=dst) / UDP(sport=547, dport=546)
             / DHCP6_Reply(trid=0x4242) / DHCP6OptServerId(duid=DUID_LL(lladdr=MAC)))
    sendp(frame, iface=IFACE, count=3, inter=0.2)


def solicit(src, seconds):
    sniffer = AsyncSniffer(iface=IFACE, lfilter=lambda p: server_messages(p) and
                           (DHCP6_Advertise in p or DHCP6_Reply in p))
    sniffer.start()
    time.sleep(0.5)
    frame = (Ether(src=MAC, dst=multicast_mac(0x00010002))
             / IPv6(src=src, dst="ff02::1:2") / UDP(sport=546, dport=547)
             / DHCP6_Solicit(trid=0x1234) / DHCP6OptClientId(duid=DUID_LL(lladdr=MAC))
             / DHCP6OptElapsedTime() / DHCP6OptIA_NA(iaid=1))
    sendp(frame, iface=IFACE, count=2, inter=0.5)
    time.sleep(float(seconds))
    print(len(sniffer.stop() or []))


def advertises(target):
    return lambda p: ICMPv6ND_NA in p and p[ICMPv6ND_NA].tgt == target and p[Ether].src != MAC


def count(seconds, ready, target=None):
    wanted = advertises(target) if target else server_messages
    sniffer = AsyncSniffer(iface=IFACE, lfilter=wanted)
    sniffer.start()
    while not getattr(sniffer, "running", False):
        time.sleep(0.05)
    time.sleep(0.3)  # the socket is open once the sniffer thread runs
    open(ready, "w").close()
    time.sleep(float(seconds))
    print(len(sniffer.stop() or []))


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"ra": ra, "na": na, "reply": reply, "solicit": solicit, "count": count}[mode](*args)
