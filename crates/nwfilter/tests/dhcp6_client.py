# A minimal DHCPv6 client for the IPv6 learning test (issue 16), run in a
# guest's namespace: the real message exchange (RFC 8415 Solicit,
# Advertise, Request, Reply), so the learner sees what a guest's dhclient
# would make it see. Each message is sent again (up to TRIES times, one
# second apart) until its answer comes: the first ones may be dropped
# while the guest's link-local address is being learned. Modes:
#   lease SRC TRIES     prints the address of the Reply's IA_NA, or "none"
#                       when no Advertise or no Reply came
#   release SRC ADDR    sends a Release of ADDR
import sys
import time

from scapy.all import (AsyncSniffer, DHCP6_Advertise, DHCP6_Release, DHCP6_Reply,
                       DHCP6_Request, DHCP6_Solicit, DHCP6OptClientId,
                       DHCP6OptElapsedTime, DHCP6OptIA_NA, DHCP6OptIAAddress,
                       DHCP6OptServerId, DUID_LL, Ether, IPv6, UDP, conf,
                       get_if_hwaddr, sendp)

conf.verb = 0
IFACE = "eth0"
MAC = get_if_hwaddr(IFACE)
DUID = DUID_LL(lladdr=MAC)
ALL_SERVERS_MAC = "33:33:00:01:00:02"


def send(src, msg):
    sendp(Ether(src=MAC, dst=ALL_SERVERS_MAC) / IPv6(src=src, dst="ff02::1:2")
          / UDP(sport=546, dport=547) / msg, iface=IFACE)


def exchange(src, msg, answer, tries):
    for _ in range(tries):
        sniffer = AsyncSniffer(iface=IFACE, lfilter=lambda p: answer in p and p[Ether].src != MAC)
        sniffer.start()
        time.sleep(0.5)
        send(src, msg)
        time.sleep(1)
        got = sniffer.stop() or []
        if got:
            return got[0]
    return None


def lease(src, tries):
    tries = int(tries)
    solicit = (DHCP6_Solicit(trid=0x101) / DHCP6OptClientId(duid=DUID)
               / DHCP6OptElapsedTime() / DHCP6OptIA_NA(iaid=1))
    advertise = exchange(src, solicit, DHCP6_Advertise, tries)
    if advertise is None:
        print("none")
        return
    request = (DHCP6_Request(trid=0x102) / DHCP6OptClientId(duid=DUID)
               / DHCP6OptServerId(duid=advertise[DHCP6OptServerId].duid)
               / DHCP6OptElapsedTime()
               / DHCP6OptIA_NA(iaid=1, ianaopts=advertise[DHCP6OptIA_NA].ianaopts))
    reply = exchange(src, request, DHCP6_Reply, tries)
    if reply is None or DHCP6OptIAAddress not in reply:
        print("none")
        return
    print(reply[DHCP6OptIAAddress].addr)


def release(src, addr):
    msg = (DHCP6_Release(trid=0x103) / DHCP6OptClientId(duid=DUID) / DHCP6OptElapsedTime()
           / DHCP6OptIA_NA(iaid=1, ianaopts=[DHCP6OptIAAddress(addr=addr)]))
    send(src, msg)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"lease": lease, "release": release}[mode](*args)
