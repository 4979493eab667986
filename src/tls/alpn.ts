// ALPN with the original's semantics: the first protocol in the CLIENT's list that the
// server supports wins, and no overlap means no protocol, not a failed handshake.
// Node selects by server preference and aborts on no overlap, so the listener decides from
// the ClientHello and then offers the TLSSocket exactly the chosen protocol (or none).

export function chooseAlpnProtocol(clientProtocols: readonly string[], serverProtocols: readonly string[]): string | undefined {
  return clientProtocols.find((protocol) => serverProtocols.includes(protocol));
}

/** A protocol list in the ALPN wire format: each name (latin1) after its length byte. */
export function wireList(protocols: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const protocol of protocols) {
    const name = Buffer.from(protocol, 'latin1');
    parts.push(Buffer.from([name.length]), name);
  }
  return Buffer.concat(parts);
}

/** Wire-format one-entry protocol lists, built once per server protocol. */
export function wireProtocolLists(serverProtocols: readonly string[]): Map<string, Buffer> {
  const lists = new Map<string, Buffer>();
  for (const protocol of serverProtocols) lists.set(protocol, wireList([protocol]));
  return lists;
}
