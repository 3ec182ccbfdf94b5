package dynamo

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// Identity items, and the feature states of override items, are read
// straight from their attribute values, with the results that
// identity.UnmarshalItem and identity.UnmarshalOverride give for their JSON
// (the form appendAVJSONSorted writes): the same identity, the same
// problems, the same errors. Going through JSON cost tens of microseconds
// and dozens of allocations per item on every identity read.
//
// The direct reader covers every item whose reading does not turn on
// encoding/json's own rules: items as Flagsmith's writers and Fledge write
// them, and the damage a reader must tolerate (attributes of other types
// in traits and overrides, missing keys, unreadable values). The rest is
// left to the JSON readers, so that no rule of encoding/json has to be
// restated here, and since no writer produces such items their cost does
// not matter: an item that fails as a whole (a number that is not a JSON
// one, an attribute of a type it cannot take, nesting deeper than
// encoding/json accepts), names that match a field only case-insensitively
// (encoding/json's rule), system trait keys that are not UTF-8, and, for
// one override, the wording of a type error.
//
// The JSON readers see map keys in order. Where the result depends on that
// order (several type errors, two names for one field, the bytes of a map
// in a feature_state_value) the store's former reader, which wrote maps in
// Go's map order, varied from one read to the next; now both readers give
// what it gave for keys in order.
//
// Strings read as encoding/json reads them back from the item's JSON:
// each byte that is not valid UTF-8 becomes U+FFFD, and a binary (B) is its
// base64 text. Numbers are their DynamoDB text, less the trailing
// whitespace a JSON number may carry.

// Problems the reader reports, worded as identity.UnmarshalItem words them.
const (
	problemTrait   = "identity_traits[%d]: unreadable trait skipped"
	problemValue   = "identity_traits[%d] %q: unreadable value skipped"
	problemFeature = "identity_features[%d]: %v; skipped"
	problemSystem  = "system_traits: not an object; ignored"
)

// maxJSONDepth is encoding/json's nesting limit: an item nested deeper is
// unreadable as JSON (DynamoDB itself stops at 32 levels).
const maxJSONDepth = 10000

// Fields of the item that identity.UnmarshalItem reads.
const (
	fieldEnvKey = iota
	fieldIdentifier
	fieldUUID
	fieldCreatedDate
	fieldDjangoID
	fieldTraits
	fieldFeatures
	fieldAlias
	fieldSystemTraits
	numItemFields
	noField = -1
)

func itemField(name string) int {
	switch name {
	case attrEnvKey:
		return fieldEnvKey
	case attrIdentifier:
		return fieldIdentifier
	case attrUUID:
		return fieldUUID
	case attrCreatedDate:
		return fieldCreatedDate
	case attrDjangoID:
		return fieldDjangoID
	case attrTraits:
		return fieldTraits
	case attrFeatures:
		return fieldFeatures
	case attrAlias:
		return fieldAlias
	case attrSystemTraits:
		return fieldSystemTraits
	}
	return noField
}

// Keys of a trait, of a feature state and of its feature.
const (
	keyTraitKey     = "trait_key"
	keyTraitValue   = "trait_value"
	keyFeature      = "feature"
	keyEnabled      = "enabled"
	keyValue        = "feature_state_value"
	keyDjangoID     = "django_id"
	keyStateUUID    = "featurestate_uuid"
	keyMultivariate = "multivariate_feature_state_values"
	keyFeatureID    = "id"
	keyFeatureName  = "name"
	keyFeatureType  = "type"
)

// decodeItem reads an identity item and its fledge_version. It is
// identity.UnmarshalItem of the item's JSON, then the repair of the floats
// fledge_float_traits names. problems lists what was skipped.
func decodeItem(item map[string]types.AttributeValue) (id *identity.Identity, version int64, problems []string, err error) {
	id, problems, ok := readItem(item)
	if !ok {
		if id, problems, err = readItemJSON(item); err != nil {
			return nil, 0, nil, err
		}
	}
	if fl, ok := item[attrFloatTraits].(*types.AttributeValueMemberSS); ok {
		for i := range id.Traits {
			t := &id.Traits[i]
			if t.Value.Kind == engine.KindInt && slices.Contains(fl.Value, t.Key) {
				t.Value = engine.Float(intAsFloat(t.Value))
			}
		}
	}
	if v, ok := item[attrVersion].(*types.AttributeValueMemberN); ok {
		version, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	return id, version, problems, nil
}

// readItemJSON reads the item as JSON, for the items readItem leaves to
// encoding/json.
func readItemJSON(item map[string]types.AttributeValue) (*identity.Identity, []string, error) {
	data, err := appendAVJSONSorted(make([]byte, 0, 512), &types.AttributeValueMemberM{Value: item})
	if err != nil {
		return nil, nil, fmt.Errorf("dynamo: decoding identity item %s: %w", itemKey(item), err)
	}
	id, problems, err := identity.UnmarshalItem(data)
	if err != nil {
		return nil, nil, fmt.Errorf("dynamo: identity item %s: %w", itemKey(item), err)
	}
	return id, problems, nil
}

// readItem is the direct reader; ok false leaves the item to readItemJSON.
func readItem(item map[string]types.AttributeValue) (id *identity.Identity, problems []string, ok bool) {
	var f [numItemFields]types.AttributeValue
	for k, av := range item {
		i := itemField(k)
		// readTraits checks the traits as it reads them, sparing a second
		// walk over every trait's map; listOf refuses all but lists, sets
		// and NULL, yet takes a nil attribute for a missing one.
		if i == fieldTraits && av == nil || i != fieldTraits && !validAV(av, 2) {
			return nil, nil, false
		}
		if i == noField {
			if folded, ok := foldedName(k); ok && itemField(folded) != noField {
				return nil, nil, false
			}
			continue
		}
		f[i] = av
	}
	id = &identity.Identity{}
	for _, s := range []struct {
		dst *string
		av  types.AttributeValue
	}{
		{&id.EnvironmentAPIKey, f[fieldEnvKey]},
		{&id.Identifier, f[fieldIdentifier]},
		{&id.UUID, f[fieldUUID]},
		{&id.CreatedDate, f[fieldCreatedDate]},
		{&id.DashboardAlias, f[fieldAlias]},
	} {
		v, kind := stringOf(s.av)
		switch kind {
		case wrongType:
			return nil, nil, false // the item is unreadable as a whole
		case isString:
			*s.dst = v
		}
	}
	traits, isList := listOf(f[fieldTraits])
	features, isList2 := listOf(f[fieldFeatures])
	if !isList || !isList2 {
		return nil, nil, false
	}
	if d, ok := idOf(f[fieldDjangoID]); ok {
		id.DjangoID = new(d) // not &d: that would allocate d even when there is none
	}
	if id.Traits, problems, ok = readTraits(traits, 3, problems); !ok {
		return nil, nil, false
	}
	if len(features) > 0 {
		id.Overrides = make([]identity.Override, 0, len(features))
	}
	for i, e := range features {
		o, err := readOverride(e)
		if err != nil {
			problems = append(problems, fmt.Sprintf(problemFeature, i, err))
			continue
		}
		id.Overrides = append(id.Overrides, o)
	}
	if len(id.Overrides) == 0 {
		id.Overrides = nil
	}
	switch st := f[fieldSystemTraits].(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberM:
		if id.SystemTraits, ok = readSystemTraits(st.Value); !ok {
			return nil, nil, false
		}
	default:
		problems = append(problems, problemSystem)
	}
	return id, problems, true
}

// listOf reads a list attribute as encoding/json reads one into a slice:
// a set is a list of its members, NULL or no attribute none; ok is false
// for any other type.
func listOf(av types.AttributeValue) (l []types.AttributeValue, ok bool) {
	switch v := av.(type) {
	case nil, *types.AttributeValueMemberNULL:
		return nil, true
	case *types.AttributeValueMemberL:
		return v.Value, true
	case *types.AttributeValueMemberSS:
		l = make([]types.AttributeValue, len(v.Value))
		for i, s := range v.Value {
			l[i] = &types.AttributeValueMemberS{Value: s}
		}
		return l, true
	case *types.AttributeValueMemberNS:
		l = make([]types.AttributeValue, len(v.Value))
		for i, s := range v.Value {
			l[i] = &types.AttributeValueMemberN{Value: s}
		}
		return l, true
	case *types.AttributeValueMemberBS:
		l = make([]types.AttributeValue, len(v.Value))
		for i, b := range v.Value {
			l[i] = &types.AttributeValueMemberB{Value: b}
		}
		return l, true
	}
	return nil, false
}

// readTraits reads identity_traits, whose entries are at depth depth,
// appending what it skips to problems. ok false leaves the item to
// readItemJSON; so does an entry validAV refuses, since the traits, unlike
// the rest of the item, are checked here.
func readTraits(l []types.AttributeValue, depth int, problems []string) (traits []identity.Trait, _ []string, ok bool) {
	if len(l) > 0 {
		traits = make([]identity.Trait, 0, len(l))
	}
	for i, e := range l {
		m, isMap := e.(*types.AttributeValueMemberM)
		if !isMap {
			if !validAV(e, depth) {
				return nil, nil, false
			}
			problems = append(problems, fmt.Sprintf(problemTrait, i))
			continue
		}
		if depth > maxJSONDepth {
			return nil, nil, false
		}
		// Looked up rather than ranged over: a trait's map holds these two
		// keys and no other, and ranging over a map costs more than two
		// lookups.
		keyAV, hasKey := m.Value[keyTraitKey]
		valueAV, hasValue := m.Value[keyTraitValue]
		if hasKey && !validAV(keyAV, depth+1) || hasValue && !validAV(valueAV, depth+1) {
			return nil, nil, false
		}
		if n := btoi(hasKey) + btoi(hasValue); len(m.Value) > n {
			for k, av := range m.Value {
				if k == keyTraitKey || k == keyTraitValue {
					continue
				}
				if !validAV(av, depth+1) {
					return nil, nil, false
				}
				if folded, ok := foldedName(k); ok && (folded == keyTraitKey || folded == keyTraitValue) {
					return nil, nil, false
				}
			}
		}
		key, kind := stringOf(keyAV)
		if kind != isString || key == "" {
			problems = append(problems, fmt.Sprintf(problemTrait, i))
			continue
		}
		v, ok := valueOf(valueAV)
		if !ok {
			problems = append(problems, fmt.Sprintf(problemValue, i, key))
			continue
		}
		if v.Kind == engine.KindNone {
			v = engine.String("") // core's repair rule (flagsmith#2806)
		}
		traits = append(traits, identity.Trait{Key: key, Value: v})
	}
	if len(traits) == 0 {
		traits = nil
	}
	return traits, problems, true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// readSystemTraits reads system_traits: by key, without null or unreadable
// values. ok false (a key that is not valid UTF-8, which could collide with
// another once repaired) leaves the item to readItemJSON.
func readSystemTraits(m map[string]types.AttributeValue) (traits []identity.Trait, ok bool) {
	for k, av := range m {
		if !utf8.ValidString(k) {
			return nil, false
		}
		if v, ok := valueOf(av); ok && v.Kind != engine.KindNone {
			traits = append(traits, identity.Trait{Key: k, Value: v})
		}
	}
	slices.SortFunc(traits, func(a, b identity.Trait) int { return strings.Compare(a.Key, b.Key) })
	return traits, true
}

// decodeOverride reads a feature_state attribute as identity.UnmarshalOverride
// reads its JSON.
func decodeOverride(av types.AttributeValue) (identity.Override, error) {
	if !validAV(av, 1) {
		return readOverrideJSON(av)
	}
	return readOverride(av)
}

// readOverride reads a valid feature_state attribute.
func readOverride(av types.AttributeValue) (identity.Override, error) {
	o, direct, err := readOverrideDirect(av)
	if !direct {
		return readOverrideJSON(av)
	}
	return o, err
}

// readOverrideJSON reads a feature state as JSON, for those the direct
// reader leaves to encoding/json.
func readOverrideJSON(av types.AttributeValue) (identity.Override, error) {
	data, err := appendAVJSONSorted(nil, av)
	if err != nil {
		return identity.Override{}, err
	}
	return identity.UnmarshalOverride(data)
}

// readOverrideDirect is the direct override reader; direct false leaves
// the feature state to readOverrideJSON.
func readOverrideDirect(av types.AttributeValue) (o identity.Override, direct bool, err error) {
	m, isMap := av.(*types.AttributeValueMemberM)
	if !isMap {
		if _, null := av.(*types.AttributeValueMemberNULL); null {
			return o, true, errors.New("feature state without a feature name")
		}
		return o, false, nil // a type error, worded by encoding/json
	}
	var feature, enabled, value, djangoID, stateUUID, multivariate types.AttributeValue
	for k, e := range m.Value {
		switch k {
		case keyFeature:
			feature = e
		case keyEnabled:
			enabled = e
		case keyValue:
			value = e
		case keyDjangoID:
			djangoID = e
		case keyStateUUID:
			stateUUID = e
		case keyMultivariate:
			multivariate = e
		default:
			if folded, ok := foldedName(k); ok {
				switch folded {
				case keyFeature, keyEnabled, keyValue, keyDjangoID, keyStateUUID, keyMultivariate:
					return o, false, nil
				}
			}
		}
	}
	hasFeature := false
	var featureID types.AttributeValue
	switch fm := feature.(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberM:
		hasFeature = true
		for k, e := range fm.Value {
			var dst *string
			switch k {
			case keyFeatureID:
				featureID = e
				continue
			case keyFeatureName:
				dst = &o.Feature.Name
			case keyFeatureType:
				dst = &o.Feature.Type
			default:
				if folded, ok := foldedName(k); ok {
					switch folded {
					case keyFeatureID, keyFeatureName, keyFeatureType:
						return o, false, nil
					}
				}
				continue
			}
			s, kind := stringOf(e)
			switch kind {
			case wrongType:
				return o, false, nil
			case isString:
				*dst = s
			}
		}
	default:
		return o, false, nil
	}
	switch e := enabled.(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberBOOL:
		o.Enabled = e.Value
	default:
		return o, false, nil
	}
	s, kind := stringOf(stateUUID)
	switch kind {
	case wrongType:
		return o, false, nil
	case isString:
		o.FeatureStateUUID = s
	}

	if !hasFeature || o.Feature.Name == "" {
		return identity.Override{}, true, errors.New("feature state without a feature name")
	}
	var ok bool
	if o.Feature.ID, ok = idOf(featureID); !ok {
		return identity.Override{}, true, fmt.Errorf("feature %q without an integer id", o.Feature.Name)
	}
	switch value.(type) {
	case nil, *types.AttributeValueMemberNULL:
	default:
		o.Value = appendCompactJSON(nil, value)
	}
	if d, ok := idOf(djangoID); ok {
		o.DjangoID = new(d)
	}
	switch mv := multivariate.(type) {
	case *types.AttributeValueMemberL:
		if len(mv.Value) > 0 {
			o.MultivariateValues = appendCompactJSON(nil, mv)
		}
	case *types.AttributeValueMemberSS:
		if len(mv.Value) > 0 {
			o.MultivariateValues = appendCompactJSON(nil, mv)
		}
	case *types.AttributeValueMemberNS:
		if len(mv.Value) > 0 {
			o.MultivariateValues = appendCompactJSON(nil, mv)
		}
	case *types.AttributeValueMemberBS:
		if len(mv.Value) > 0 {
			o.MultivariateValues = appendCompactJSON(nil, mv)
		}
	}
	return o, true, nil
}

// stringKind is how an attribute reads into a Go string.
type stringKind uint8

const (
	noString  stringKind = iota // NULL or no attribute: the string is left as it is
	isString                    // S, or B as its base64 text
	wrongType                   // anything else: a type error
)

func stringOf(av types.AttributeValue) (string, stringKind) {
	switch v := av.(type) {
	case nil, *types.AttributeValueMemberNULL:
		return "", noString
	case *types.AttributeValueMemberS:
		return jsonString(v.Value), isString
	case *types.AttributeValueMemberB:
		return base64.StdEncoding.EncodeToString(v.Value), isString
	}
	return "", wrongType
}

// jsonString is s as it reads back from its JSON: every byte that is not
// valid UTF-8 replaced by U+FFFD, as encoding/json writes it.
func jsonString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// valueOf reads a trait value as identity.ValueFromJSON reads its JSON:
// NULL or no attribute is KindNone; maps, lists and sets are not values.
func valueOf(av types.AttributeValue) (engine.Value, bool) {
	switch v := av.(type) {
	case nil, *types.AttributeValueMemberNULL:
		return engine.None(), true
	case *types.AttributeValueMemberBOOL:
		return engine.Bool(v.Value), true
	case *types.AttributeValueMemberS:
		return engine.String(jsonString(v.Value)), true
	case *types.AttributeValueMemberB:
		return engine.String(base64.StdEncoding.EncodeToString(v.Value)), true
	case *types.AttributeValueMemberN:
		num, _ := jsonNumber(v.Value)
		return engine.NumberValue(num)
	}
	return engine.Value{}, false
}

// idOf reads an id attribute as identity.UnmarshalItem reads its JSON: a
// number, or a string holding one.
func idOf(av types.AttributeValue) (int64, bool) {
	switch v := av.(type) {
	case *types.AttributeValueMemberN:
		num, _ := jsonNumber(v.Value)
		return identity.ParseID(num)
	case *types.AttributeValueMemberS:
		return identity.ParseID(jsonString(v.Value))
	case *types.AttributeValueMemberB:
		return identity.ParseID(base64.StdEncoding.EncodeToString(v.Value))
	}
	return 0, false
}

// validAV reports whether av, at nesting depth depth of a JSON document,
// converts to JSON that encoding/json reads: numbers that are JSON
// numbers, no attribute types appendAVJSONSorted refuses, no nesting
// deeper than encoding/json's limit.
func validAV(av types.AttributeValue, depth int) bool {
	switch v := av.(type) {
	case *types.AttributeValueMemberS, *types.AttributeValueMemberBOOL,
		*types.AttributeValueMemberNULL, *types.AttributeValueMemberB:
		return true
	case *types.AttributeValueMemberN:
		_, ok := jsonNumber(v.Value)
		return ok
	case *types.AttributeValueMemberSS, *types.AttributeValueMemberBS:
		return depth <= maxJSONDepth
	case *types.AttributeValueMemberNS:
		if depth > maxJSONDepth {
			return false
		}
		for _, s := range v.Value {
			if _, ok := jsonNumber(s); !ok {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberM:
		if depth > maxJSONDepth {
			return false
		}
		for _, e := range v.Value {
			if !validAV(e, depth+1) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberL:
		if depth > maxJSONDepth {
			return false
		}
		for _, e := range v.Value {
			if !validAV(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// jsonNumber reports whether s, a DynamoDB number, is a JSON number, as
// validNumber decides (trailing JSON whitespace allowed), and returns it
// without that whitespace, as a JSON reader takes it.
func jsonNumber(s string) (string, bool) {
	digits := func(i int) int {
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i
	}
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(i + 1)
	default:
		return "", false
	}
	if i < len(s) && s[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return "", false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return "", false
		}
		i = j
	}
	for j := i; j < len(s); j++ {
		switch s[j] {
		case ' ', '\t', '\n', '\r':
		default:
			return "", false
		}
	}
	return s[:i], true
}

// appendCompactJSON appends a valid attribute value as the compact JSON
// identity.UnmarshalOverride keeps of a value: appendAVJSONSorted's,
// without the whitespace a number may carry.
func appendCompactJSON(dst []byte, av types.AttributeValue) []byte {
	switch v := av.(type) {
	case *types.AttributeValueMemberN:
		num, _ := jsonNumber(v.Value)
		return append(dst, num...)
	case *types.AttributeValueMemberNS:
		dst = append(dst, '[')
		for i, s := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			num, _ := jsonNumber(s)
			dst = append(dst, num...)
		}
		return append(dst, ']')
	case *types.AttributeValueMemberM:
		dst = append(dst, '{')
		for i, k := range slices.Sorted(maps.Keys(v.Value)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = engine.AppendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendCompactJSON(dst, v.Value[k])
		}
		return append(dst, '}')
	case *types.AttributeValueMemberL:
		dst = append(dst, '[')
		for i, e := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCompactJSON(dst, e)
		}
		return append(dst, ']')
	}
	dst, _ = appendAVJSONSorted(dst, av) // scalars and the other sets: no numbers
	return dst
}

// foldedName returns the name that encoding/json matches k to when no
// field is named k exactly: k with ASCII letters in lower case, and ſ and
// the Kelvin sign K as s and k (the only runes outside ASCII whose case
// folding reaches an ASCII letter). ok is false when k cannot match an
// ASCII name, or holds no upper case or non-ASCII byte and so can only
// match exactly.
func foldedName(k string) (string, bool) {
	fold := false
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
			fold = true
			break
		}
	}
	if !fold {
		return "", false
	}
	b := make([]byte, 0, len(k))
	for _, r := range k {
		switch {
		case 'A' <= r && r <= 'Z':
			r += 'a' - 'A'
		case r == '\u017f': // ſ
			r = 's'
		case r == '\u212a': // Kelvin sign
			r = 'k'
		case r >= utf8.RuneSelf:
			return "", false
		}
		b = append(b, byte(r))
	}
	return string(b), true
}
