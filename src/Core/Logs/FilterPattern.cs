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
/// subset of regex syntax. Space-delimited patterns (<c>[ip, user, ...]</c>) and regular expressions
/// inside them or inside JSON selectors are not supported and are refused the same way, rather than matched wrongly.
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
            if (text[0] == '[') throw Invalid();
            return ParseTerms(text);
        }
        catch (FormatException)
        {
            throw Invalid();
        }
    }

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
