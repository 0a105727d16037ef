import ReactMarkdown from 'react-markdown';
import remarkGfm from 'remark-gfm';

// Model output rendered as Markdown (GitHub flavour: tables, lists, code). Raw HTML in the text
// is shown as text, never run.
export function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown remarkPlugins={[remarkGfm]}>{text}</ReactMarkdown>
    </div>
  );
}
