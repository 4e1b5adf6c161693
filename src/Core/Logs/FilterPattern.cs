using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Serverless.Core.Api;

namespace Serverless.Core.Logs;

/// <summary>
/// A CloudWatch Logs filter pattern, parsed once and matched against each message:
/// <list type="bullet">
/// <item>terms (<c>ERROR</c>), quoted phrases (<c>"disk full"</c>): every one must occur, case-sensitive;</item>
/// <item><c>?ERROR ?WARN</c>: at least one of the <c>?</c> terms must occur;</item>
/// <item><c>-term</c>: the term must not occur;</item>
/// <item>JSON selectors: <c>{ $.level = "error" }</c>, <c>!=</c>, <c>&lt; &gt; &lt;= &gt;=</c> on numbers,
/// <c>*</c> wildcards in strings, <c>IS NULL</c>, <c>IS TRUE</c>, <c>IS FALSE</c>, <c>NOT EXISTS</c>,
/// <c>&amp;&amp;</c>, <c>||</c> and parentheses; a message that is not a JSON object matches none.</item>
/// </list>
/// An empty pattern matches everything. A pattern that does not parse is an InvalidParameterException.
/// A regular expression alone (<c>%[Ee]rror|[Ff]ail%</c>) matches where it occurs, with CloudWatch's
/// subset of regex syntax. Space-delimited patterns (<c>[ip, user, ..., status_code = 4*, bytes &gt; 1000]</c>)
/// match messages split into fields at spaces (text within <c>""</c> or <c>[]</c> is one field, without
/// them): one field per name, <c>...</c> for any number of fields, conditions <c>= !=</c> (strings with
/// <c>*</c> wildcards, or numbers), <c>&lt; &gt; &lt;= &gt;=</c> on numbers, joined with <c>&amp;&amp;</c> and
/// <c>||</c> on the same field. Regular expressions inside space-delimited patterns or JSON selectors are not
/// supported and are refused the same way, rather than matched wrongly.
/// </summary>
public sealed partial class FilterPattern
{
    private readonly Func<string, bool> _match;

    private FilterPattern(Func<string, bool> match) => _match = match;

    public static readonly FilterPattern All = new(_ => true);

    public bool Matches(string message) => _match(message);

    public static FilterPattern Parse(string? pattern)
    {
        var text = pattern?.Trim() ?? "";
        if (text.Length == 0 || text == "\"\"") return All;
        try
        {
            if (text[0] == '{') return new JsonParser(text).Parse();
            if (text[0] == '%') return ParseRegex(text);
            if (text[0] == '[') return ParseSpaceDelimited(text);
            return ParseTerms(text);
        }
        catch (FormatException)
        {
            throw Invalid();
        }
    }

    /// <summary><c>[name, name op value, ..., name op value &amp;&amp; name op value]</c>: see the class remarks.</summary>
    private static FilterPattern ParseSpaceDelimited(string text)
    {
        if (text.Length < 2 || text[^1] != ']') throw Invalid();
        var fields = new List<Func<string, bool>?>();   // null: the ellipsis
        foreach (var part in SplitOutsideQuotes(text[1..^1], ","))
        {
            var field = part.Trim();
            if (field == "...") { fields.Add(null); continue; }
            fields.Add(FieldCondition(field));
        }
        return new FilterPattern(message => MatchFields(MessageFields(message), 0, fields, 0));
    }

    private static Func<string, bool> FieldCondition(string field)
    {
        var name = FieldName().Match(field);
        if (!name.Success) throw Invalid();
        if (name.Length == field.Length) return _ => true;
        Func<string, bool>? any = null;
        foreach (var alternative in SplitOutsideQuotes(field, "||"))
        {
            Func<string, bool>? all = null;
            foreach (var clause in SplitOutsideQuotes(alternative, "&&"))
            {
                var c = Clause(clause.Trim(), name.Value);
                var before = all;
                all = before is null ? c : v => before(v) && c(v);
            }
            var done = all!;
            var earlier = any;
            any = earlier is null ? done : v => earlier(v) || done(v);
        }
        return any!;
    }

    private static Func<string, bool> Clause(string clause, string name)
    {
        if (!clause.StartsWith(name, StringComparison.Ordinal)) throw Invalid();
        var rest = clause[name.Length..].TrimStart();
        foreach (var op in new[] { "!=", "<=", ">=", "=", "<", ">" })
        {
            if (!rest.StartsWith(op, StringComparison.Ordinal)) continue;
            var value = rest[op.Length..].Trim();
            if (value.Length == 0) throw Invalid();
            var quoted = value.Length >= 2 && value[0] == '"' && value[^1] == '"';
            if (quoted) value = value[1..^1];
            else if (value.Any(char.IsWhiteSpace) || value.Contains('"')) throw Invalid();
            // %regex% on a field: not supported here, refused rather than matched as literal text.
            else if (value.Length >= 2 && value[0] == '%' && value[^1] == '%') throw Invalid();
            var numeric = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && !quoted;
            bool IsNumber(string v, out double n) => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out n);
            if (op is "<" or ">" or "<=" or ">=")
            {
                if (!numeric) throw Invalid();
                return v => IsNumber(v, out var n) && op switch { "<" => n < number, ">" => n > number, "<=" => n <= number, _ => n >= number };
            }
            var wildcard = new Regex("^" + string.Join(".*", value.Split('*').Select(Regex.Escape)) + "$", RegexOptions.Singleline);
            bool Equal(string v) => numeric && IsNumber(v, out var n) ? n == number : wildcard.IsMatch(v);
            return op == "=" ? Equal : v => !Equal(v);
        }
        throw Invalid();
    }

    /// <summary>Splits at <paramref name="separator"/> outside double quotes; an empty piece is invalid.</summary>
    private static List<string> SplitOutsideQuotes(string text, string separator)
    {
        var parts = new List<string>();
        var start = 0;
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '"') quoted = !quoted;
            else if (!quoted && string.CompareOrdinal(text, i, separator, 0, separator.Length) == 0)
            {
                parts.Add(text[start..i]);
                i += separator.Length - 1;
                start = i + 1;
            }
        }
        if (quoted) throw Invalid();
        parts.Add(text[start..]);
        if (parts.Any(p => p.Trim().Length == 0)) throw Invalid();
        return parts;
    }

    /// <summary>The message's fields: split at spaces, text within <c>""</c> or <c>[]</c> one field without them.</summary>
    private static List<string> MessageFields(string message)
    {
        var fields = new List<string>();
        for (var i = 0; i < message.Length;)
        {
            if (char.IsWhiteSpace(message[i])) { i++; continue; }
            var close = message[i] switch { '"' => '"', '[' => ']', _ => '\0' };
            if (close != '\0' && message.IndexOf(close, i + 1) is var end and > 0)
            {
                fields.Add(message[(i + 1)..end]);
                i = end + 1;
                continue;
            }
            var start = i;
            while (i < message.Length && !char.IsWhiteSpace(message[i])) i++;
            fields.Add(message[start..i]);
        }
        return fields;
    }

    private static bool MatchFields(List<string> values, int at, List<Func<string, bool>?> fields, int field)
    {
        if (field == fields.Count) return at == values.Count;
        if (fields[field] is not { } condition)
        {
            for (var skip = at; skip <= values.Count; skip++)
                if (MatchFields(values, skip, fields, field + 1)) return true;
            return false;
        }
        return at < values.Count && condition(values[at]) && MatchFields(values, at + 1, fields, field + 1);
    }

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*")]
    private static partial Regex FieldName();

    private static InvalidParameterException Invalid() => new("Invalid filter pattern");

    /// <summary>
    /// <c>%regex%</c>: the message matches when the expression occurs in it, case-sensitive. Only what
    /// CloudWatch Logs documents is taken: letters and digits, the symbols <c>: _ # = @ / ; , -</c> and
    /// the operators <c>^ $ ? [ ] { } | \ * + .</c>; no parentheses, no multi-byte characters.
    /// </summary>
    private static FilterPattern ParseRegex(string text)
    {
        if (text.Length < 3 || text[^1] != '%') throw Invalid();
        var expression = text[1..^1];
        if (!expression.All(c => char.IsAsciiLetterOrDigit(c) || ":_#=@/;,-^$?[]{}|\\*+.".Contains(c))) throw Invalid();
        Regex regex;
        try
        {
            regex = new Regex(expression, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        }
        catch (ArgumentException)
        {
            throw Invalid();
        }
        return new FilterPattern(message =>
        {
            try
            {
                return regex.IsMatch(message);
            }
            catch (RegexMatchTimeoutException)
            {
                return false;
            }
        });
    }

    private static FilterPattern ParseTerms(string text)
    {
        List<string> all = [], any = [], none = [];
        var i = 0;
        while (i < text.Length)
        {
            if (char.IsWhiteSpace(text[i])) { i++; continue; }
            var list = all;
            if (text[i] == '?') { list = any; i++; }
            else if (text[i] == '-') { list = none; i++; }
            if (i >= text.Length) throw new FormatException();
            string term;
            if (text[i] == '"')
            {
                var end = text.IndexOf('"', i + 1);
                if (end < 0) throw new FormatException();
                term = text[(i + 1)..end];
                i = end + 1;
            }
            else
            {
                var start = i;
                while (i < text.Length && !char.IsWhiteSpace(text[i])) i++;
                term = text[start..i];
                // Unquoted terms are words: anything else must be quoted, as CloudWatch Logs requires.
                if (!BareTerm().IsMatch(term)) throw new FormatException();
            }
            if (term.Length > 0) list.Add(term);
        }
        return new FilterPattern(message =>
            all.TrueForAll(t => message.Contains(t, StringComparison.Ordinal))
            && !none.Exists(t => message.Contains(t, StringComparison.Ordinal))
            && (any.Count == 0 || any.Exists(t => message.Contains(t, StringComparison.Ordinal))));
    }

    [GeneratedRegex(@"^[\p{L}\p{N}_.]+$")]
    private static partial Regex BareTerm();

    /// <summary>Recursive descent over <c>{ expr }</c>: expr := and ('||' and)*; and := primary ('&amp;&amp;' primary)*.</summary>
    private sealed class JsonParser(string text)
    {
        private int _at;

        public FilterPattern Parse()
        {
            Expect("{");
            var expression = Or();
            Expect("}");
            Skip();
            if (_at != text.Length) throw new FormatException();
            return new FilterPattern(message =>
            {
                try
                {
                    using var document = JsonDocument.Parse(message);
                    return document.RootElement.ValueKind == JsonValueKind.Object && expression(document.RootElement);
                }
                catch (JsonException)
                {
                    return false;
                }
            });
        }

        private Func<JsonElement, bool> Or()
        {
            var left = And();
            while (TryTake("||"))
            {
                var l = left;
                var r = And();
                left = e => l(e) || r(e);
            }
            return left;
        }

        private Func<JsonElement, bool> And()
        {
            var left = Primary();
            while (TryTake("&&"))
            {
                var l = left;
                var r = Primary();
                left = e => l(e) && r(e);
            }
            return left;
        }

        private Func<JsonElement, bool> Primary()
        {
            if (TryTake("("))
            {
                var inner = Or();
                Expect(")");
                return inner;
            }
            var selector = Selector();
            if (TryWord("IS"))
            {
                if (TryWord("NULL")) return e => Select(e, selector) is { ValueKind: JsonValueKind.Null };
                if (TryWord("TRUE")) return e => Select(e, selector) is { ValueKind: JsonValueKind.True };
                if (TryWord("FALSE")) return e => Select(e, selector) is { ValueKind: JsonValueKind.False };
                throw new FormatException();
            }
            if (TryWord("NOT"))
            {
                if (!TryWord("EXISTS")) throw new FormatException();
                return e => Select(e, selector) is null;
            }
            foreach (var op in new[] { "!=", "<=", ">=", "=", "<", ">" })
            {
                if (!TryTake(op)) continue;
                if (op is "<" or ">" or "<=" or ">=")
                {
                    var number = Number();
                    return e => Select(e, selector) is { ValueKind: JsonValueKind.Number } v && Compare(v.GetDouble(), op, number);
                }
                var value = Value();
                var numeric = double.TryParse(value.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && !value.Quoted;
                var wildcard = new Regex("^" + string.Join(".*", value.Text.Split('*').Select(Regex.Escape)) + "$", RegexOptions.Singleline);
                bool Equal(JsonElement? v) => v switch
                {
                    { ValueKind: JsonValueKind.String } s => wildcard.IsMatch(s.GetString()!),
                    { ValueKind: JsonValueKind.Number } num => numeric ? num.GetDouble() == n : wildcard.IsMatch(num.GetRawText()),
                    { ValueKind: JsonValueKind.True or JsonValueKind.False } b => wildcard.IsMatch(b.GetRawText()),
                    _ => false,
                };
                return op == "=" ? e => Equal(Select(e, selector)) : e => Select(e, selector) is { } v && !Equal(v);
            }
            throw new FormatException();
        }

        private static bool Compare(double left, string op, double right) => op switch
        {
            "<" => left < right,
            ">" => left > right,
            "<=" => left <= right,
            ">=" => left >= right,
            _ => throw new FormatException(),
        };

        /// <summary><c>$.a.b[0].c</c> as its steps: property names and array indexes.</summary>
        private List<object> Selector()
        {
            Skip();
            if (!TryTake("$")) throw new FormatException();
            var steps = new List<object>();
            while (_at < text.Length)
            {
                if (text[_at] == '.')
                {
                    _at++;
                    var start = _at;
                    while (_at < text.Length && (char.IsLetterOrDigit(text[_at]) || text[_at] is '_' or '-' or '@' or '$')) _at++;
                    if (_at == start) throw new FormatException();
                    steps.Add(text[start.._at]);
                }
                else if (text[_at] == '[')
                {
                    var end = text.IndexOf(']', _at);
                    if (end < 0 || !int.TryParse(text.AsSpan(_at + 1, end - _at - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                        throw new FormatException();
                    steps.Add(index);
                    _at = end + 1;
                }
                else break;
            }
            if (steps.Count == 0) throw new FormatException();
            return steps;
        }

        private static JsonElement? Select(JsonElement root, List<object> steps)
        {
            var current = root;
            foreach (var step in steps)
            {
                if (step is string name && current.ValueKind == JsonValueKind.Object && current.TryGetProperty(name, out var child)) current = child;
                else if (step is int index && current.ValueKind == JsonValueKind.Array && index < current.GetArrayLength()) current = current[index];
                else return null;
            }
            return current;
        }

        private double Number()
        {
            Skip();
            var start = _at;
            while (_at < text.Length && (char.IsDigit(text[_at]) || text[_at] is '-' or '+' or '.' or 'e' or 'E')) _at++;
            return double.Parse(text.AsSpan(start, _at - start), NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        private (string Text, bool Quoted) Value()
        {
            Skip();
            if (_at < text.Length && text[_at] == '"')
            {
                var end = text.IndexOf('"', _at + 1);
                if (end < 0) throw new FormatException();
                var quoted = text[(_at + 1)..end];
                _at = end + 1;
                return (quoted, true);
            }
            var start = _at;
            while (_at < text.Length && !char.IsWhiteSpace(text[_at]) && text[_at] is not ('}' or ')' or '&' or '|')) _at++;
            if (_at == start) throw new FormatException();
            return (text[start.._at], false);
        }

        private void Skip()
        {
            while (_at < text.Length && char.IsWhiteSpace(text[_at])) _at++;
        }

        private bool TryTake(string token)
        {
            Skip();
            if (string.CompareOrdinal(text, _at, token, 0, token.Length) != 0) return false;
            _at += token.Length;
            return true;
        }

        private bool TryWord(string word)
        {
            Skip();
            if (string.Compare(text, _at, word, 0, word.Length, StringComparison.OrdinalIgnoreCase) != 0) return false;
            var after = _at + word.Length;
            if (after < text.Length && char.IsLetterOrDigit(text[after])) return false;
            _at = after;
            return true;
        }

        private void Expect(string token)
        {
            if (!TryTake(token)) throw new FormatException();
        }
    }
}
