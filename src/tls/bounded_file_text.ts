// Reading a credential file whole, but never more than a limit: the sync read (at start) and
// the async read (reloads while serving) share this one bounded buffer, so they refuse the same
// files the same way. The buffer starts at the size fstat gave (a certificate is a few KiB) and
// grows only for a file that grew since, or has no size (a pipe), up to limit + 1 bytes: one
// byte past the limit is how a file over it is told from one exactly at it.

/** What a read of the file may call for: where the next bytes go. */
export class BoundedFileText {
  private buffer: Buffer;
  private length = 0;
  private ended = false;

  /**
   * @param statSize the size fstat reported (0 for a pipe)
   * @param tooLarge throws the caller's error for a file of at least this many bytes
   */
  constructor(
    private readonly limit: number,
    statSize: number,
    private readonly tooLarge: (bytes: number) => never,
  ) {
    if (statSize > limit) tooLarge(statSize);
    this.buffer = Buffer.allocUnsafe(statSize + 1);
  }

  /** The free space the next read fills, or undefined once the file has ended or passed the limit. */
  space(): Buffer | undefined {
    if (this.ended || this.length > this.limit) return undefined;
    if (this.length === this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.buffer.length * 2, this.limit + 1));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    return this.buffer.subarray(this.length);
  }

  /** Records a read of `bytes` into the last space; 0 is the end of the file. */
  took(bytes: number): void {
    if (bytes === 0) this.ended = true;
    this.length += bytes;
  }

  /** The text read, once space() has said there is no more to read. */
  text(): string {
    if (this.length > this.limit) this.tooLarge(this.length);
    return this.buffer.toString('utf8', 0, this.length);
  }
}
