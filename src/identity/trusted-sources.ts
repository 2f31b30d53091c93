/**
 * Which peers may send the trusted identity header: a list of IPs and CIDRs (IPv4 and IPv6).
 * An IPv4 peer seen on a dual-stack socket as `::ffff:1.2.3.4` matches IPv4 rules.
 */
import { BlockList, isIP } from 'node:net';
import { ConfigError } from '../config/deployment.js';
import { BoundedCache } from './cache.js';

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** Drops an IPv6 zone (`fe80::1%eth0`) and unwraps an IPv4-mapped address. */
export function canonicalAddress(address: string): string {
  let a = address.trim();
  const zone = a.indexOf('%');
  if (zone !== -1) a = a.slice(0, zone);
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const mapped = MAPPED_V4.exec(a);
  return mapped ? mapped[1]! : a;
}

/** Builds the rule list; throws ConfigError naming the bad entry. */
export function buildTrustedSources(sources: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of sources) {
    const slash = entry.indexOf('/');
    const rawAddr = slash === -1 ? entry : entry.slice(0, slash);
    const addr = canonicalAddress(rawAddr);
    const family = isIP(addr);
    if (family === 0) {
      throw new ConfigError(`PROXY_TRUSTED_SOURCES entry ${JSON.stringify(entry)} is not an IP address or CIDR`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash === -1) {
      list.addAddress(addr, type);
      continue;
    }
    const prefixText = entry.slice(slash + 1);
    let prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    // `::ffff:10.0.0.0/104` is the IPv4 network 10.0.0.0/8 written in IPv6 form
    if (family === 4 && addr !== rawAddr.trim() && prefix >= 96) prefix -= 96;
    const maxPrefix = family === 4 ? 32 : 128;
    if (!(prefix >= 0 && prefix <= maxPrefix)) {
      throw new ConfigError(`PROXY_TRUSTED_SOURCES entry ${JSON.stringify(entry)} has a bad prefix length (0..${maxPrefix})`);
    }
    list.addSubnet(addr, prefix, type);
  }
  return list;
}

/**
 * Returns a predicate "is this peer address trusted". An empty list trusts everyone (the
 * documented default); an unknown peer address is never trusted when a list is set.
 */
export function trustedSourceChecker(sources: readonly string[]): (remoteAddress: string | undefined) => boolean {
  if (sources.length === 0) return () => true;
  const list = buildTrustedSources(sources);
  const memo = new BoundedCache<string, boolean>(4096);
  return (remoteAddress) => {
    if (!remoteAddress) return false;
    const known = memo.get(remoteAddress);
    if (known !== undefined) return known;
    const addr = canonicalAddress(remoteAddress);
    const family = isIP(addr);
    const trusted = family === 0 ? false : list.check(addr, family === 4 ? 'ipv4' : 'ipv6');
    memo.set(remoteAddress, trusted);
    return trusted;
  };
}
