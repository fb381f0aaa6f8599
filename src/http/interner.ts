// One shared copy of texts that many connections hold identical (GraphQL documents).
export class Interner {
  private texts = new Map<string, string>();

  /** Bounded: at most `max` texts of at most `maxLength` characters; past `max` the table starts over. */
  constructor(
    private readonly max: number,
    private readonly maxLength: number,
  ) {}

  intern(text: string): string {
    if (typeof text !== "string" || text.length > this.maxLength) return text;
    const known = this.texts.get(text);
    if (known !== undefined) return known;
    if (this.texts.size >= this.max) this.texts.clear();
    this.texts.set(text, text);
    return text;
  }
}
